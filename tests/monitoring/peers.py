"""The real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) as a peer of the monitoring tests.

    with Alertmanager(tmp_path, webhook_url=live_server.url + "/api/v1/integrations/alertmanager/",
                      token=token) as am:
        am.post_alerts([am.alert("DiskFull", service="checkout", severity="critical")])

starts the program on free 127.0.0.1 ports with clustering off, its storage in `tmp_path`, and a throwaway
alertmanager.yml whose one webhook receiver sends every notification (firing and resolved) to `webhook_url`
with `Authorization: Token <token>` (http_config.authorization). Groups are flushed after 1s and re-sent only
after an hour, so a test sees one notification per change. It waits for /-/ready and stops the process by
its PID. When the program is not installed the test is skipped, saying so: it is never imitated.
"""

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.peers import free_port

BINARY = "prometheus-alertmanager"

CONFIG = """\
route:
  receiver: servicedesk
  group_by: [{group_by}]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: servicedesk
    webhook_configs:
      - url: {url}
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization:
            type: Token
            credentials: {token}
"""


def alertmanager_binary() -> str:
    """The installed program's path, or skip the test with the reason."""
    path = shutil.which(BINARY)
    if path is None:
        pytest.skip(f"{BINARY} is not installed (Debian package prometheus-alertmanager; .ci/run installs it): "
                    "the end-to-end test needs the real program and is skipped rather than faked")
    return path


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Alertmanager:
    """One private Alertmanager process; `url` is its web address (API under /api/v2/)."""

    def __init__(self, tmp_path: Path, *, webhook_url: str, token: str,
                 group_by: tuple[str, ...] = ("alertname", "service")):
        self.binary = alertmanager_binary()
        self.dir = Path(tmp_path) / "alertmanager"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.dir / "alertmanager.yml"
        self.config.write_text(CONFIG.format(group_by=", ".join(group_by), url=json.dumps(webhook_url),
                                             token=json.dumps(token)))
        self.log_path = self.dir / "alertmanager.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    # --- process -----------------------------------------------------------------------------------------

    def start(self) -> "Alertmanager":
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.config}", f"--storage.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             f"--web.external-url={self.url}", "--log.level=debug"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"{BINARY} exited with {self.proc.returncode} at start:\n{self.log()[-3000:]}")
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"{BINARY} was not ready on port {self.port} within 30s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # this process's PID only
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "Alertmanager":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- its API -----------------------------------------------------------------------------------------

    @staticmethod
    def alert(alertname: str, *, starts_at: datetime, ends_at: datetime, summary: str = "",
              **labels: str) -> dict:
        """One alert as Prometheus posts it (POST /api/v2/alerts)."""
        return {
            "labels": {"alertname": alertname, **labels},
            "annotations": {"summary": summary} if summary else {},
            "startsAt": iso(starts_at),
            "endsAt": iso(ends_at),
            "generatorURL": "http://prometheus.test/graph",
        }

    def post_alerts(self, alerts: list[dict]) -> None:
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.read()

    def alerts(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as response:
            return json.loads(response.read())

    def notifications_sent(self) -> int:
        """Successful webhook notifications, from its own metrics (alertmanager_notifications_total)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        total = failed = 0.0
        for line in text.splitlines():
            if line.startswith('alertmanager_notifications_total{integration="webhook"'):
                total += float(line.rsplit(" ", 1)[1])
            elif line.startswith('alertmanager_notifications_failed_total{integration="webhook"'):
                failed += float(line.rsplit(" ", 1)[1])
        return int(total - failed)


def now() -> datetime:
    return datetime.now(UTC)


def later(**delta) -> datetime:
    return now() + timedelta(**delta)


class FlakyProxy:
    """A real HTTP proxy in front of `target`: it forwards every POST (body, Authorization, Content-Type) and
    answers the first `fail_first` of them 503 whatever the target said, so the sender retries a notification
    that was in fact received -- what a load balancer timing out on a slow answer does."""

    def __init__(self, target: str, *, fail_first: int = 1):
        self.target = target
        self.fail_first = fail_first
        self.forwarded: list[dict] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                request = urllib.request.Request(proxy.target, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status = response.status
                except urllib.error.HTTPError as error:
                    status = error.code
                proxy.forwarded.append({"body": body, "status": status})
                answer = 503 if len(proxy.forwarded) <= proxy.fail_first else status
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/proxy"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FlakyProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
