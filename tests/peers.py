"""Real local peers for the outside world: an HTTP receiver for webhooks and an SMTP sink for mail."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout=45.0, interval=0.2) -> bool:
    """Whether `predicate()` became true within `timeout` seconds, asked every `interval`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def wait_for_peer(process: subprocess.Popen, ready, *, name: str, seconds: float, log=lambda: "") -> None:
    """Wait until `ready()` is true while the peer's `process` runs. RuntimeError with `log()` if the process exits
    or `seconds` pass first; the caller stops what it started."""
    came_up = wait_for(lambda: process.poll() is not None or ready(), timeout=seconds, interval=0.05)
    if process.poll() is not None:
        raise RuntimeError(f"{name} exited with {process.returncode}:\n{log()}")
    if not came_up:
        raise RuntimeError(f"{name} did not come up within {seconds:g} s:\n{log()}")


def stop_process(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM to our own peer by its PID, SIGKILL if it has not gone in `timeout` seconds."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class HttpReceiver:
    """A real HTTP server on 127.0.0.1 that records every request and answers `status`.

    `status` may be a list: the n-th request gets its n-th code (the last one from then on). `reply` is the
    body sent back. `then(record)`, when given, runs in its own thread after the answer went out -- a tool
    that calls back once it has done the job."""

    def __init__(self, status: int | list[int] = 200, *, reply: bytes = b"ok", then=None):
        self.status = status
        self.reply = reply
        self.then = then
        self.requests: list[dict] = []
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                record = {"path": self.path, "headers": dict(self.headers), "body": body}
                receiver.requests.append(record)
                codes = receiver.status if isinstance(receiver.status, list) else [receiver.status]
                code = codes[min(len(receiver.requests), len(codes)) - 1]
                self.send_response(code)
                if code != 204:
                    self.send_header("Content-Length", str(len(receiver.reply)))
                self.end_headers()
                if code != 204:
                    self.wfile.write(receiver.reply)
                self.wfile.flush()
                receiver.received.set()
                if receiver.then is not None:
                    threading.Thread(target=receiver.then, args=(record,), daemon=True).start()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/servicedesk"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def json_bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it is sent. `refuse`: an address it
    answers with a temporary error (451) at RCPT, as a busy receiving server does, until the test clears it;
    `reject`: one it refuses for good (550, no such mailbox)."""

    def __init__(self, refuse: str = "", reject: str = ""):
        self.messages: list[dict] = []
        self.received = threading.Event()
        self.refuse, self.reject = refuse, reject
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if sink.reject and address == sink.reject:
                    return "550 5.1.1 No such mailbox"
                if sink.refuse and address == sink.refuse:
                    return "451 4.3.0 Try again later"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                sink.messages.append({
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "data": envelope.content.decode("utf8", errors="replace"),
                })
                sink.received.set()
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


DOVECOT_BINARY = "dovecot"

DOVECOT_CONFIG = """\
# Throwaway configuration written by tests.peers.Dovecot: nothing of /etc/dovecot is read.
base_dir = {root}/run
state_dir = {root}/state
instance_name = sd-test-{port}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
{ssl_dh}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
{login_extra}}}
# Failed logins are part of the tests: no growing penalty per client IP (anvil's auth-penalty socket off).
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
{anvil_extra}}}
"""


def dovecot_binary() -> str:
    """The installed program's path; the test FAILS when it is missing (CI installs dovecot-imapd)."""
    import pytest

    path = shutil.which(DOVECOT_BINARY) or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.path.exists(p)), None)
    if path is None:
        pytest.fail("\n" + "!" * 78 + "\nThe dovecot binary is not installed. The email channel's IMAP tests need "
                    "the real server:\ninstall the Debian package dovecot-imapd (.ci/run does). These tests "
                    "fail rather than skip.\n" + "!" * 78, pytrace=False)
    return path


class Dovecot:
    """A real IMAP server (Debian's dovecot-imapd) on free 127.0.0.1 ports, with a throwaway config in a temp dir.

        with Dovecot(users={"helpdesk": "secret"}) as imap:
            uid = imap.append("helpdesk", raw_bytes)
            MailBox("127.0.0.1", imap.imaps_port, ssl_context=ssl.create_default_context(cafile=imap.ca_file))

    `imap_port` speaks plain IMAP with STARTTLS (plaintext login allowed: for the "plain" security setting
    of local test servers), `imaps_port` implicit TLS. The certificate is self-signed for IP:127.0.0.1,
    made with the openssl CLI; `ca_file` is it, so clients verify it. Mail is maildir in that dir; the
    users are a passwd-file with plain passwords; every user's mail belongs to the current user (as root:
    the `mail` system user, since Dovecot refuses UID 0 for mail). The master runs in the foreground
    (dovecot -F) and is stopped by its PID."""

    def __init__(self, *, users: dict[str, str] | None = None):
        # Not pytest's tmp_path: its parents are private (0700) and Dovecot's auth and mail processes run
        # as other users that must reach the passwd-file and the maildir. A directory of our own in the
        # system temp dir, traversable by them, removed again on exit.
        self.root = tempfile.mkdtemp(prefix="sd-dovecot-")
        os.chmod(self.root, 0o711)
        self.users = dict(users or {"helpdesk": "helpdesk-pass"})
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.ca_file = os.path.join(self.root, "cert.pem")
        self.log_file = os.path.join(self.root, "dovecot.log")
        self.config_file = os.path.join(self.root, "dovecot.conf")
        self.process = None

    # --- setup ---

    def _certificate(self):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", os.path.join(self.root, "key.pem"), "-out", self.ca_file],
            check=True, capture_output=True,
        )

    def _write_config(self):
        import pwd

        if os.geteuid() == 0:
            # Dovecot drops privileges to these system users (created by the package) and refuses mail
            # owned by root, so the maildir belongs to "mail".
            login_user, internal_user = "dovenull", "dovecot"
            owner = pwd.getpwnam("mail")
            uid, gid = owner.pw_uid, owner.pw_gid
            login_extra = anvil_extra = ""
        else:
            me = pwd.getpwuid(os.getuid())
            login_user = internal_user = me.pw_name
            uid, gid = me.pw_uid, me.pw_gid
            login_extra = "  chroot =\n"
            anvil_extra = "  chroot =\n"
        for sub in ("run", "state", "mail", "home"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(os.path.join(self.root, sub), uid, gid)
        with open(os.path.join(self.root, "users"), "w") as f:
            f.writelines(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in self.users.items())
        dh = "/usr/share/dovecot/dh.pem"
        with open(self.config_file, "w") as f:
            f.write(DOVECOT_CONFIG.format(
                root=self.root, port=self.imap_port, imap_port=self.imap_port, imaps_port=self.imaps_port,
                ssl_dh=f"ssl_dh = <{dh}" if os.path.exists(dh) else "", login_user=login_user,
                internal_user=internal_user, uid=uid, gid=gid, login_extra=login_extra,
                anvil_extra=anvil_extra))
        os.chmod(os.path.join(self.root, "users"), 0o644)

    def _log(self) -> str:
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return "(no log file)"

    # --- lifecycle ---

    def __enter__(self):
        binary = dovecot_binary()
        self._certificate()
        self._write_config()
        self.process = subprocess.Popen([binary, "-F", "-c", self.config_file],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        process = self.process

        def output():  # what it printed, once it has exited (reading a running one's pipe would block)
            printed = process.stdout.read().decode(errors="replace") if process.poll() is not None else ""
            return f"{printed}\n{self._log()}"

        try:
            wait_for_peer(process, lambda: _imap_greets(self.imap_port)
                          and _imap_greets(self.imaps_port, tls=self.ssl_context()),
                          name=f"dovecot on 127.0.0.1:{self.imap_port}/{self.imaps_port}", seconds=20, log=output)
        except RuntimeError:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.process is not None:
            self._stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _stop(self):
        stop_process(self.process)  # the master's PID: it stops its children
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None

    # --- use ---

    def ssl_context(self):
        import ssl

        return ssl.create_default_context(cafile=self.ca_file)

    def mailbox(self, user: str):
        """A logged-in imap_tools MailBox over implicit TLS (verified against ca_file)."""
        from imap_tools import MailBox

        return MailBox("127.0.0.1", self.imaps_port, ssl_context=self.ssl_context()).login(
            user, self.users[user], initial_folder=None)

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> int | None:
        """Append one message through IMAP (as a mail server's delivery would) and return its UID."""
        with self.mailbox(user) as box:
            if folder != "INBOX" and not box.folder.exists(folder):
                box.folder.create(folder)
            result = box.append(raw, folder)
        found = re.search(rb"APPENDUID \d+ (\d+)", b" ".join(
            item if isinstance(item, bytes) else str(item).encode() for item in (result[1] or [])))
        return int(found.group(1)) if found else None


def _imap_greets(port: int, tls=None) -> bool:
    """The server says "* OK" (over TLS when `tls` is a context) -- its login process has its auth service:
    ready for clients. Each probe logs out, so no half-open login is left to slow down the stop."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
            sock = tls.wrap_socket(raw, server_hostname="127.0.0.1") if tls is not None else raw
            ready = sock.recv(200).startswith(b"* OK")
            if ready:
                sock.sendall(b"a LOGOUT\r\n")
                sock.recv(200)
            if tls is not None:
                sock.close()
            return ready
    except OSError:
        return False


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 in front of `port` that cuts a connection mid-conversation: a poll whose
    connection drops.

        with DroppingProxy(imap.imap_port, on_command=b"FETCH", then_bytes=300) as proxy:
            MailBoxUnencrypted("127.0.0.1", proxy.port)   # the first FETCH's answer stops after 300 bytes

    Per connection it counts what the server sent and the client's command lines. It cuts (closes both
    sides) once the server has sent `after_bytes` bytes, or once the `nth` client line containing
    `on_command` (case-insensitive) went to the server and `then_bytes` more bytes of the answer came back.
    Only the first `drops` connections are cut; later ones pass everything, so a retry sees the server whole.
    TLS goes through untouched (the proxy never looks inside it except for counting; give `on_command` only
    for plain-text IMAP, `after_bytes` works for both)."""

    def __init__(self, port: int, *, after_bytes: int | None = None, on_command: bytes | None = None,
                 nth: int = 1, then_bytes: int = 0, drops: int = 1):
        if after_bytes is None and on_command is None and drops:
            raise ValueError("say when to cut: after_bytes or on_command (or drops=0 to only count)")
        self.target = port
        self.after_bytes = after_bytes
        self.on_command = on_command.lower() if on_command else None
        self.nth = nth
        self.then_bytes = then_bytes
        self.drops = drops
        self.connections = 0
        self.cuts = 0
        self.server_bytes: list[int] = []  # per connection: what the server sent that reached the client
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._stopping = False

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stopping = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() in the other thread (close does not)
        except OSError:
            pass
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)
        self._thread.join(timeout=5)

    def _accept(self):
        while not self._stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                self.connections += 1
                cutting = self.connections <= self.drops
                self._sockets += [client, server]
                self.server_bytes.append(0)
                index = len(self.server_bytes) - 1
            state = {"sent": 0, "commands": 0, "armed": None, "cut": False, "line": b"", "index": index}
            threading.Thread(target=self._upstream, args=(client, server, state, cutting), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, state, cutting), daemon=True).start()

    def _cut(self, state, client, server):
        with self._lock:
            if not state["cut"]:
                state["cut"] = True
                self.cuts += 1
        _close(client)
        _close(server)

    def _upstream(self, client, server, state, cutting):
        """Client to server: forward, counting command lines that contain the word."""
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data or state["cut"]:
                _close(server)
                return
            armed = False
            if cutting and self.on_command is not None and state["armed"] is None:
                lines = (state["line"] + data).split(b"\n")
                state["line"] = lines.pop()[-4096:]
                for line in lines:
                    if self.on_command in line.lower():
                        state["commands"] += 1
                        if state["commands"] == self.nth:
                            armed = True
            if armed:  # before the command goes out: its answer cannot come back first
                state["armed"] = self.then_bytes
            try:
                server.sendall(data)
            except OSError:
                _close(client)
                return

    def _downstream(self, server, client, state, cutting):
        """Server to client: forward, and cut when the byte budget or the armed command's budget runs out."""
        while True:
            try:
                data = server.recv(65536)
            except OSError:
                data = b""
            if not data or state["cut"]:
                _close(client)
                return
            limit = None
            if cutting and self.after_bytes is not None:
                limit = self.after_bytes - state["sent"]
            if cutting and state["armed"] is not None:
                limit = state["armed"] if limit is None else min(limit, state["armed"])
            if limit is not None and len(data) >= limit:
                try:
                    client.sendall(data[:max(limit, 0)])
                    state["sent"] += max(limit, 0)
                    self.server_bytes[state["index"]] = state["sent"]
                except OSError:
                    pass
                self._cut(state, client, server)
                return
            try:
                client.sendall(data)
            except OSError:
                _close(server)
                return
            state["sent"] += len(data)
            self.server_bytes[state["index"]] = state["sent"]
            if state["armed"] is not None:
                state["armed"] -= len(data)


def _close(sock: socket.socket):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


PGBOUNCER_BINARY = "/usr/sbin/pgbouncer"

PGBOUNCER_CONFIG = """\
; Throwaway configuration written by tests.peers.PgBouncer: nothing of /etc/pgbouncer is read.
[databases]
* = host={db_host} port={db_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {root}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {root}/pgbouncer.log
pidfile = {root}/pgbouncer.pid
admin_users = {admin}
stats_period = 60
"""


class PgBouncer:
    """Debian's pgbouncer on a free 127.0.0.1 port, in transaction mode, in front of the PostgreSQL server at
    `db_host`:`db_port` (every database by its own name, trust authentication for `users`).

        with PgBouncer(users=["postgres"]) as bouncer:
            url = bouncer.url("postgres", "sd_test")        # postgres://postgres@127.0.0.1:<port>/sd_test

    `pool_size` server connections per database and user: fewer than the clients, so transactions of different
    clients share server connections, as in production. Run in the foreground and stopped by its PID; as root
    it drops to the `postgres` system user (pgbouncer refuses to run as root). The test FAILS when the binary
    is missing (.ci/run installs the Debian package pgbouncer)."""

    def __init__(self, *, users: list[str], db_host: str = "127.0.0.1", db_port: int = 5432, pool_size: int = 3):
        import pytest

        if not os.path.exists(PGBOUNCER_BINARY):
            pytest.fail("\n" + "!" * 78 + "\npgbouncer is not installed: the PgBouncer tests need the real one;\n"
                        "install the Debian package pgbouncer (.ci/run does). These tests fail rather than skip.\n"
                        + "!" * 78, pytrace=False)
        self.users, self.db_host, self.db_port, self.pool_size = list(users), db_host, db_port, pool_size
        self.port = free_port()
        self.proc = None
        self.root = tempfile.mkdtemp(prefix="sd-pgbouncer-")

    def url(self, user: str, database: str) -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        try:
            with open(os.path.join(self.root, "pgbouncer.log")) as handle:
                return handle.read()
        except OSError:
            return ""

    def __enter__(self):
        import pwd

        import pytest

        with open(os.path.join(self.root, "userlist.txt"), "w") as handle:
            handle.writelines(f'"{user}" ""\n' for user in self.users)
        with open(os.path.join(self.root, "pgbouncer.ini"), "w") as handle:
            handle.write(PGBOUNCER_CONFIG.format(root=self.root, port=self.port, db_host=self.db_host,
                                                 db_port=self.db_port, pool_size=self.pool_size,
                                                 admin=self.users[0]))
        argv = [PGBOUNCER_BINARY]
        if os.getuid() == 0:
            owner = pwd.getpwnam("postgres")
            for name in ("", "userlist.txt", "pgbouncer.ini"):
                os.chown(os.path.join(self.root, name), owner.pw_uid, owner.pw_gid)
            argv += ["-u", "postgres"]
        self.proc = subprocess.Popen([*argv, os.path.join(self.root, "pgbouncer.ini")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        proc = self.proc

        def output():
            printed = proc.stderr.read().decode(errors="replace")[-2000:] if proc.poll() is not None else ""
            return f"{printed}\n{self.log()[-2000:]}"

        try:
            wait_for_peer(proc, lambda: listening(self.port), name=f"pgbouncer on {self.port}", seconds=15,
                          log=output)
        except RuntimeError as error:
            self._stop()
            pytest.fail(str(error))
        return self

    def _stop(self):
        stop_process(self.proc)
        self.proc = None

    def __exit__(self, *exc):
        self._stop()
        shutil.rmtree(self.root, ignore_errors=True)
