"""Real local peers for the outside world: an HTTP receiver for webhooks and an SMTP sink for mail."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it is sent."""

    def __init__(self):
        self.messages: list[dict] = []
        self.received = threading.Event()
        sink = self

        class Handler:
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
