"""Start localstripe bound to one host, with its store in a file of ours (it defaults to all
interfaces and a fixed file in /tmp, shared by every run on the machine), and with the fidelity fixes of
gateway/dev/localstripe_fidelity.py installed (payment methods from tokens, confirm with a payment method and
3-D Secure options, card countries, declines, disputes, idempotency keys)."""

import argparse
import logging
import pickle
import socket

from aiohttp import web
from localstripe import resources

from gateway.dev import localstripe_fidelity


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--store", required=True, help="pickle file for localstripe's state")
    parser.add_argument("--from-scratch", action="store_true")
    parser.add_argument("--api-version", default=None,
                        help="API version stamped on events (a webhook registration's api_version wins)")
    args = parser.parse_args()

    def load(store):
        try:
            with open(args.store, "rb") as f:
                store.clear()
                store.update(pickle.load(f))
        except (FileNotFoundError, EOFError, AttributeError, pickle.UnpicklingError):
            pass  # a store from an older launcher, or a torn write: start empty

    def dump(store):
        with open(args.store, "wb") as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    # The server module builds its routes from the resource classes when imported: patch them first.
    localstripe_fidelity.install(api_version=args.api_version)
    from localstripe import server

    localstripe_fidelity.add_routes(server)
    if not args.from_scratch:
        resources.store.try_load_from_disk()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    logging.basicConfig(level=logging.WARNING)
    web.run_app(server.app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    main()
