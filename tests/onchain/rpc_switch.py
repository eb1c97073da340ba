"""A TCP relay in front of a node that a test can switch off and on: off, it drops every open connection and
refuses to relay new ones (a client sees its RPC fail at once, as with a provider down); hanging, it takes new
connections and never answers them (a client waits out its timeout); on, it relays again. The
worker processes of a test reach the node only through it, so one chain's RPC can go down under a running worker."""

import contextlib
import socket
import threading


class RpcSwitch:
    def __init__(self, upstream_port, host="127.0.0.1"):
        self.upstream = (host, upstream_port)
        self.up, self.hanging = True, False
        self._held = []
        self._conns = set()
        self._lock = threading.Lock()
        self._server = socket.create_server((host, 0))
        self.port = self._server.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self._accept, daemon=True, name="rpc-switch").start()

    def _accept(self):
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            if self.hanging:
                self._held.append(client)  # taken, never read nor answered: the client waits out its timeout
                continue
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            self._drop(s)

    def _drop(self, sock):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        with self._lock:
            self._conns.discard(sock)

    def down(self):
        self.up = False
        with self._lock:
            conns = list(self._conns)
        for sock in conns:
            self._drop(sock)

    def hang(self):
        """Open connections dropped; new ones are taken and never answered (a node that hangs)."""
        self.hanging = True
        self.down()

    def restore(self):
        """Relay again. This process's chain connections start afresh (onchain.rpc keeps, per provider, that every
        URL of a chain failed, and would refuse calls until its probe window passes: the next test must not inherit
        that); other processes (a worker) find the node back at their next probe, as in production."""
        from onchain.rpc import web3 as rpc_web3

        self.up, self.hanging = True, False
        held, self._held = self._held, []
        for sock in held:
            self._drop(sock)
        rpc_web3.cache_clear()

    def close(self):
        self.restore()  # the hung connections too
        self.down()
        self._server.close()
