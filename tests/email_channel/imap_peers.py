"""Interim IMAP peers for the poller's tests until tests/peers.py has PARSE's Dovecot and DroppingProxy (same
names and attributes, so the tests switch by changing one import): a real Dovecot from Debian's dovecot-imapd
with a throwaway configuration on 127.0.0.1, and a TCP proxy that cuts a connection mid-way."""

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from imap_tools import MailBox

from tests.peers import free_port

DOVECOT = "/usr/sbin/dovecot"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


class Dovecot:
    """A real Dovecot serving IMAP (STARTTLS allowed) and IMAPS on free ports of 127.0.0.1, with maildirs and
    users in `tmp_path`, and a certificate for 127.0.0.1 signed by a CA made for the test (`.ca_file`)."""

    def __init__(self, tmp_path: Path, users: dict[str, str] | None = None):
        if not Path(DOVECOT).exists():
            pytest.fail(f"{DOVECOT} is missing: install Debian's dovecot-imapd (the IMAP tests need it)",
                        pytrace=False)
        if os.getuid() == 0:
            # As root (the CI container) Dovecot will not serve mail as uid 0 and its auth process runs as the
            # "dovecot" user, who cannot enter pytest's private tmp dirs: a world-readable dir of its own, and
            # the mail owned by "nobody".
            self.dir = Path(tempfile.mkdtemp(prefix="sd-dovecot-"))
            self.dir.chmod(0o755)
            self.mail_uid, self.mail_gid = pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid
            self._remove = True
        else:
            self.dir = Path(tmp_path) / "dovecot"
            self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
            self._remove = False
        self.users = users or {"desk": "desk-pass-1"}
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.proc = None

    def _certificates(self) -> None:
        d = self.dir
        run = lambda *args: subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)  # noqa: E731
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test IMAP CA",
            "-keyout", "ca.key", "-out", "ca.pem")
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")
        (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")
        self.ca_file = str(d / "ca.pem")

    def _config(self) -> Path:
        d = self.dir
        (d / "passwd").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        conf = d / "dovecot.conf"
        conf.write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/server.pem
ssl_key = <{d}/server.key
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/passwd
}}
userdb {{
  driver = static
  args = uid={self.mail_uid} gid={self.mail_gid} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}

service imap-login {{
  chroot =
}}
""")
        return conf

    def start(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        for sub in ("run", "state", "mail", "home"):
            (self.dir / sub).mkdir(exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.dir / sub, self.mail_uid, self.mail_gid)
        self._certificates()
        conf = self._config()
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if _answers(self.imap_port) and _answers_tls(self.imaps_port, self.ca_file):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        log = (self.dir / "dovecot.log").read_text() if (self.dir / "dovecot.log").exists() else ""
        self.stop()
        pytest.fail(f"dovecot did not start:\n{log[-3000:]}")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.proc = None
        if self._remove:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def mailbox(self, user: str):
        """An imap-tools MailBox logged in as `user` over IMAPS (verifying the test CA)."""
        context = ssl.create_default_context(cafile=self.ca_file)
        return MailBox("127.0.0.1", self.imaps_port, ssl_context=context).login(user, self.users[user],
                                                                                initial_folder=None)

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        with self.mailbox(user) as box:
            if not box.folder.exists(folder):
                box.folder.create(folder)
            box.append(raw, folder)


def _answers_tls(port: int, ca_file: str) -> bool:
    try:
        context = ssl.create_default_context(cafile=ca_file)
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 in front of `target_port` that cuts the connection once the client has sent
    `drop_after` commands containing `word` (e.g. the 3rd "FETCH"): the server's answer to it never arrives."""

    def __init__(self, target_port: int, *, word: bytes = b"FETCH", drop_after: int = 1):
        self.target_port = target_port
        self.word = word.upper()
        self.drop_after = drop_after
        self.seen = 0
        self.dropped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.listener.close()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _cut(self, *socks):
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream and self.word in data.upper() and not self.dropped.is_set():
                    self.seen += data.upper().count(self.word)
                    if self.seen >= self.drop_after:
                        self.dropped.set()
                        self._cut(src, dst)
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._cut(src, dst)


class HoldingProxy(DroppingProxy):
    """Like DroppingProxy, but instead of cutting it holds the `drop_after`-th command containing `word` until
    `.release` is set (a poll kept busy mid-way, for the lease's test); `.held` is set once it holds one."""

    def __init__(self, target_port: int, *, word: bytes = b"FETCH", drop_after: int = 1):
        super().__init__(target_port, word=word, drop_after=drop_after)
        self.held = self.dropped
        self.release = threading.Event()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream and self.word in data.upper() and not self.held.is_set():
                    self.seen += data.upper().count(self.word)
                    if self.seen >= self.drop_after:
                        self.held.set()
                        self.release.wait(30)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._cut(src, dst)
