#!/usr/bin/env bash
# CI step (issue 12): build the production image from the Dockerfile and smoke-test compose.yaml's stack with podman.
#
# No image registry is reachable here and no Docker engine runs, so: Debian's podman (runc runtime) with its own
# containers.conf (CONTAINERS_CONF, the system's left alone); base images built locally from a
# `debootstrap --variant=minbase bookworm` root filesystem and kept in podman's store (a warm run reuses them);
# Debian's podman-compose 1.0.3, which ignores depends_on conditions, only creates the containers and this script
# starts them in the order the conditions give. Checks: migrations exit 0; web's HEALTHCHECK passes and /healthz
# answers 200 with the proxy's X-Forwarded-Proto (and redirects to https without it); a worker answers
# `celery inspect ping`; beat sends tasks and a worker receives them; nothing runs as root. Everything it started is
# removed on the way out, failure included. Timings go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
WORK="$REPO/var/image"
LOGS="$WORK/logs"
SMOKE="$WORK/smoke"
PROJECT="${TULPAR_SMOKE_PROJECT:-tulpar-smoke}"
APP_IMAGE="localhost/tulpar:smoke"
DEBIAN_IMAGE="localhost/tulpar-debian:bookworm"
CONTEXT="$REPO/deploy/local-images"
EXTRA_CA="$REPO/deploy/extra-ca"
mkdir -p "$LOGS"
T0=$(date +%s)
LAST=$T0
TIMINGS=()

say() { printf '[image %4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
lap() {  # record how long the phase since the previous lap took
	local now
	now=$(date +%s)
	TIMINGS+=("$(printf '%-22s %4ss' "$1" "$((now - LAST))")")
	LAST=$now
}
fail() {
	say "FAIL: $*"
	exit 1
}
# Wait for a condition (a command that succeeds), checking every half second, at most $1 seconds.
wait_for() {
	local limit=$1 what=$2 deadline
	shift 2
	deadline=$(($(date +%s) + limit))
	until "$@" >/dev/null 2>&1; do
		(($(date +%s) < deadline)) || fail "$what: not within ${limit}s"
		sleep 0.5
	done
	say "$what"
}

# --- Tools: Debian's podman (runc), podman-compose 1.0.3 and debootstrap. ---
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v podman-compose >/dev/null || missing+=(podman-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
	[ "$(id -u)" = 0 ] || fail "install Debian's ${missing[*]} (apt-get install ${missing[*]})"
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$LOGS/apt.log" 2>&1 ||
		{ tail -20 "$LOGS/apt.log"; fail "apt-get install ${missing[*]}"; }
fi
# The machine's own limits (a container asking for more fails to start), runc, no systemd here.
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"
lap tools

# --- Tear down whatever this project has in podman: at the start (a killed earlier run) and on every exit. ---
compose() { podman-compose -p "$PROJECT" -f "$SMOKE/compose.yaml" "$@"; }
cname() { echo "${PROJECT}_$1_1"; }
remove_stack() {
	local label="label=io.podman.compose.project=$PROJECT"
	podman ps -aq --filter "$label" | xargs -r podman rm -f -t 2 >/dev/null 2>&1 || true
	podman pod ls -q --filter "$label" 2>/dev/null | xargs -r podman pod rm -f >/dev/null 2>&1 || true
	podman volume ls -q --filter "$label" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
	podman network ls -q --filter "$label" | xargs -r podman network rm -f >/dev/null 2>&1 || true
}
finish() {
	local rc=$?
	trap - EXIT INT TERM
	jobs -p | xargs -r kill 2>/dev/null || true  # a base image build still running when something failed
	if ((rc != 0)); then
		for service in db redis migrate web worker beat; do
			if podman container exists "$(cname "$service")" 2>/dev/null; then
				echo "----- $service (last 30 lines) -----"
				podman logs --tail 30 "$(cname "$service")" 2>&1 || true
			fi
		done
	fi
	remove_stack
	rm -f "$EXTRA_CA"/*.crt
	left=$(podman ps -aq --filter "label=io.podman.compose.project=$PROJECT" | wc -l)
	lap teardown
	echo "Image smoke timings ($([ "$rc" = 0 ] && echo passed || echo FAILED), $left containers left):"
	printf '  %s\n' "${TIMINGS[@]}"
	printf '  %-22s %4ss\n' total "$(($(date +%s) - T0))"
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM
remove_stack

# --- Local base images (stand-ins for python:3.11-slim, postgres:16, redis:7), cached in podman's store. ---
mirror() {  # the Debian mirror apt already uses here (not the security one)
	local url
	url=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources |
		grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -1)
	echo "${url:-http://deb.debian.org/debian}"
}
if ! podman image exists "$DEBIAN_IMAGE"; then
	say "debootstrap --variant=minbase bookworm from $(mirror)"
	rm -rf "$WORK/rootfs"
	debootstrap --variant=minbase bookworm "$WORK/rootfs" "$(mirror)" >"$LOGS/debootstrap.log" 2>&1 ||
		{ tail -20 "$LOGS/debootstrap.log"; fail debootstrap; }
	rm -rf "$WORK/rootfs"/var/cache/apt/archives/*.deb "$WORK/rootfs"/var/lib/apt/lists/*
	tar --numeric-owner -C "$WORK/rootfs" -c . | podman import -q - "$DEBIAN_IMAGE" >/dev/null
	rm -rf "$WORK/rootfs"
	lap "debootstrap + import"
fi
base_id=$(podman image inspect -f '{{.Id}}' "$DEBIAN_IMAGE")
base_image() {  # name: tagged by the hash of its Containerfile, entrypoint and the Debian image, so edits rebuild
	local tag
	tag=$(cat "$CONTEXT/$1.Containerfile" "$CONTEXT/$1"-entrypoint.sh 2>/dev/null | cat - <(echo "$base_id") |
		sha256sum | cut -c1-12)
	echo "localhost/tulpar-$1:$tag"
}
build_base() {
	local image
	image=$(base_image "$1")
	podman image exists "$image" && return 0
	podman build -q --format docker --build-arg "BASE=$DEBIAN_IMAGE" -f "$CONTEXT/$1.Containerfile" -t "$image" \
		"$CONTEXT" >"$LOGS/base-$1.log" 2>&1 || { tail -20 "$LOGS/base-$1.log"; return 1; }
	# Older versions of this base image (an earlier hash) are no longer used: free their space.
	podman images --format '{{.Repository}}:{{.Tag}}' "localhost/tulpar-$1" | grep -vxF "$image" |
		xargs -r podman rmi >/dev/null 2>&1 || true
}
PYTHON_IMAGE=$(base_image python)
export TULPAR_POSTGRES_IMAGE TULPAR_REDIS_IMAGE TULPAR_IMAGE="$APP_IMAGE"
TULPAR_POSTGRES_IMAGE=$(base_image postgres)
TULPAR_REDIS_IMAGE=$(base_image redis)
# The database and Redis images build beside Python's and the app's (mostly waiting on the mirror and PyPI).
build_base postgres & pg_build=$!
build_base redis & redis_build=$!
build_base python || fail "python base image"
lap "base images (python)"

# --- The app image, from the Dockerfile as committed; this machine's extra CAs only for the build. ---
rm -f "$EXTRA_CA"/*.crt
for cert in /usr/local/share/ca-certificates/*.crt; do
	[ -e "$cert" ] && cp "$cert" "$EXTRA_CA/"
done
say "building $APP_IMAGE"
previous=$(podman image inspect -f '{{.Id}}' "$APP_IMAGE" 2>/dev/null || true)
podman build --format docker --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" -t "$APP_IMAGE" . >"$LOGS/build.log" 2>&1 ||
	{ tail -30 "$LOGS/build.log"; fail "podman build"; }
rm -f "$EXTRA_CA"/*.crt
# The previous build's image, now untagged, goes (its layers shared with this one stay as the build cache).
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect -f '{{.Id}}' "$APP_IMAGE")" ]; then
	podman rmi "$previous" >/dev/null 2>&1 || true
fi
wait "$pg_build" || fail "postgres base image"
wait "$redis_build" || fail "redis base image"
lap "app image"
[ "$(podman image inspect -f '{{.Config.User}}' "$APP_IMAGE")" != "" ] || fail "the image sets no USER"
# (Output captured, then matched: `cmd | grep -q` under pipefail fails when grep stops reading before cmd is done.)
healthcheck=$(podman image inspect -f '{{.Config.Healthcheck}}' "$APP_IMAGE")
[[ "$healthcheck" == *healthcheck.py* ]] || fail "the image has no HEALTHCHECK"

# --- The stack: compose.yaml as committed, throwaway secrets, started in depends_on order. ---
rm -rf "$SMOKE"
mkdir -p "$SMOKE"
cp compose.yaml "$SMOKE/"
secret() { python3 -c 'import secrets, sys; print(secrets.token_hex(int(sys.argv[1])))' "$1"; }
umask 077
cat >"$SMOKE/tulpar.env" <<EOF
DJANGO_SECRET_KEY=$(secret 32)
DJANGO_CSRF_TRUSTED_ORIGINS=https://localhost
PUBLIC_BASE_URL=https://localhost
EOF
echo "HOT_WALLET_PRIVATE_KEY=0x$(secret 32)" >"$SMOKE/tulpar-worker.env"
umask 022
compose up --no-start --no-build db redis migrate web worker beat >"$LOGS/compose-up.log" 2>&1 ||
	{ tail -20 "$LOGS/compose-up.log"; fail "podman-compose up --no-start"; }
for service in db redis migrate web worker beat; do
	podman container exists "$(cname "$service")" || { tail -20 "$LOGS/compose-up.log"; fail "no $service container"; }
done
# podman's complaint that it cannot add systemd timers for the health checks goes to the log: with no systemd here,
# health checks run only when called (`podman healthcheck run`), which is what this script does.
start() { podman start "$@" >>"$LOGS/podman-start.log" 2>&1 || { tail -20 "$LOGS/podman-start.log"; fail "podman start $*"; }; }
start "$(cname db)" "$(cname redis)"
wait_for 60 "db healthy" podman healthcheck run "$(cname db)"
wait_for 60 "redis healthy" podman healthcheck run "$(cname redis)"
start "$(cname migrate)"
migrate_rc=$(podman wait "$(cname migrate)")
[ "$migrate_rc" = 0 ] || fail "migrations exited $migrate_rc"
say "migrations exited 0"
start "$(cname web)" "$(cname worker)" "$(cname beat)"

wait_for 90 "web healthy (image HEALTHCHECK: /healthz)" podman healthcheck run "$(cname web)"
# As the proxy forwards it: an allowed host and X-Forwarded-Proto https answer 200; without the header, the
# production settings redirect to https (so the header is what makes it pass).
probe() {
	podman exec -i "$(cname web)" python - "$@" <<'EOF'
import sys, urllib.error, urllib.request
class Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
headers = {"Host": "localhost", **dict(h.split(": ", 1) for h in sys.argv[1:])}
try:
    with urllib.request.build_opener(Stay).open(urllib.request.Request("http://127.0.0.1:8000/healthz", headers=headers), timeout=10) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("Location", ""))
EOF
}
answer=$(probe "X-Forwarded-Proto: https")
[[ "$answer" == "200 "*'"ok"'* ]] || fail "/healthz with X-Forwarded-Proto https answered: $answer"
say "/healthz with X-Forwarded-Proto https: $answer"
answer=$(probe)
# Probes are answered before the HTTPS redirect (gateway/health.py): a container's own check speaks plain http.
[[ "$answer" == "200 "*'"ok"'* ]] || fail "/healthz without the proxy header answered: $answer"
say "/healthz without it: $answer"

wait_for 90 "worker answers celery inspect ping (its healthcheck)" podman healthcheck run "$(cname worker)"
answer=$(podman exec "$(cname worker)" sh -c 'celery -A gateway inspect ping --timeout 10 -d "celery@$(hostname)"') ||
	fail "worker did not answer celery inspect ping: $answer"
[[ "$answer" == *pong* ]] || fail "worker did not answer celery inspect ping: $answer"
wait_for 60 "beat sends tasks" sh -c "podman logs $(cname beat) 2>&1 | grep -q 'Sending due task'"
wait_for 60 "a worker receives beat's tasks" sh -c "podman logs $(cname worker) 2>&1 | grep -qE 'Task [a-z_.]+\[[0-9a-f-]+\] received'"
for service in web worker beat; do
	uid=$(podman exec "$(cname "$service")" id -u)
	[ "$uid" != 0 ] || fail "$service runs as root"
done
say "web, worker and beat run as uid $uid, not root"
for service in web worker beat; do
	[ "$(podman inspect -f '{{.State.Running}}' "$(cname "$service")")" = true ] || fail "$service stopped"
done
lap "stack smoke"
say "image smoke test passed"
