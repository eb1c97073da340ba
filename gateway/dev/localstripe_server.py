"""Start localstripe bound to one host, with its store in a file of ours (it defaults to all
interfaces and a fixed file in /tmp, shared by every run on the machine)."""

import argparse
import logging
import pickle
import socket

from aiohttp import web
from localstripe import resources, server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--store", required=True, help="pickle file for localstripe's state")
    parser.add_argument("--from-scratch", action="store_true")
    args = parser.parse_args()

    def load(store):
        try:
            with open(args.store, "rb") as f:
                store.clear()
                store.update(pickle.load(f))
        except FileNotFoundError:
            pass

    def dump(store):
        with open(args.store, "wb") as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    if not args.from_scratch:
        resources.store.try_load_from_disk()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    logging.basicConfig(level=logging.WARNING)
    web.run_app(server.app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    main()
