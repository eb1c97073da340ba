#!/bin/sh
# As the official image: never root, and protected mode off (it is built that way there) since clients come from
# the compose network, not loopback; nothing publishes this port.
set -eu
if [ "$(id -u)" = 0 ]; then
	chown -R redis:redis /data
	exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "${1:-}" = redis-server ]; then
	exec "$@" --protected-mode no
fi
exec "$@"
