"""A peer the poller's lease test needs beside tests/peers.py's Dovecot and DroppingProxy: a TCP proxy that
holds a poll in the middle, so a second poll can be tried while the first one holds the mailbox."""

import socket
import threading


class HoldingProxy:
    """A TCP proxy on 127.0.0.1 in front of `port` that holds the `nth` client command containing `word` (plain
    IMAP) until `.release` is set; `.held` is set once it holds one."""

    def __init__(self, port: int, *, word: bytes = b"FETCH", nth: int = 1):
        self.target = port
        self.word = word.upper()
        self.nth = nth
        self.seen = 0
        self.held = threading.Event()
        self.release = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = []

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for sock in self._sockets:
            _close(sock)

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream and not self.held.is_set() and self.word in data.upper():
                    self.seen += data.upper().count(self.word)
                    if self.seen >= self.nth:
                        self.held.set()
                        self.release.wait(30)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
