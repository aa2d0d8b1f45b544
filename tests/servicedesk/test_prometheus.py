"""The shipped Prometheus and Alertmanager files (deploy/), checked and driven by the real programs (Debian's
prometheus and prometheus-alertmanager): promtool validates the rules and runs their unit tests, and the whole
loop runs for real -- Prometheus scrapes our live server's /metrics with the token, evaluates alerts.yml, sends
what fires to Alertmanager, which posts it to our own events endpoint, where it opens an incident; once the
cause is gone the alert resolves the same way. Skipped, saying so, when a program is not installed."""

import json
import shutil
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.db import connection
from django.utils import timezone

from servicedesk.models import Heartbeat
from servicedesk.outbox import outbox_relay
from tests.monitoring.peers import Alertmanager, alertmanager_binary
from tests.peers import free_port
from tests.workers import celery_broker, wait_for

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package}): the test needs the real program and is "
                    "skipped rather than faked")
    return path


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60)


# --- the files, checked by the programs --------------------------------------------------------------------------


def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    promtool = binary("promtool", "prometheus")
    checked = run(promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = run(promtool, "test", "rules", "alerts_test.yml", cwd=DEPLOY / "prometheus")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_promtool_accepts_the_scrape_config_once_its_token_file_exists(tmp_path):
    promtool = binary("promtool", "prometheus")
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert (job["job_name"], job["metrics_path"], job["authorization"]["type"]) == ("servicedesk", "/metrics", "Bearer")
    job["authorization"]["credentials_file"] = str(token)
    config["rule_files"] = [str(DEPLOY / "prometheus" / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


def test_amtool_accepts_the_alertmanager_config_pointing_at_our_endpoint():
    amtool = binary("amtool", "prometheus-alertmanager")
    checked = run(amtool, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    [hook] = config["receivers"][0]["webhook_configs"]
    assert hook["url"].endswith("/api/v1/integrations/alertmanager/") and hook["send_resolved"] is True


# --- the loop, for real --------------------------------------------------------------------------------------------


class Prometheus:
    """A private Prometheus on a free 127.0.0.1 port, its data in `directory`; stopped by its PID."""

    def __init__(self, directory: Path, config: dict):
        self.binary = binary("prometheus", "prometheus")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.dir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.log_path = self.dir / "prometheus.log"
        self.proc = None

    def __enter__(self):
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=debug"],
            stdout=self._log, stderr=subprocess.STDOUT)
        if not wait_for(self._ready, timeout=30, interval=0.2):
            self.__exit__()
            pytest.fail(f"prometheus was not ready within 30s:\n{self.log()[-3000:]}")
        return self

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def query(self, expr: str) -> list[dict]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())["data"]["result"]

    def firing(self) -> list[str]:
        with urllib.request.urlopen(f"{self.url}/api/v1/alerts", timeout=10) as response:
            alerts = json.loads(response.read())["data"]["alerts"]
        return sorted(a["labels"]["alertname"] for a in alerts if a["state"] == "firing")


def alertmanager_config(tmp_path: Path, url: str, token: str) -> str:
    """deploy/alertmanager/alertmanager.yml with our live server's address, its token file, and groups flushed
    after a second (the shipped file waits 30 s and 5 min)."""
    token_file = tmp_path / "event-token"
    token_file.write_text(token)
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    [hook] = config["receivers"][0]["webhook_configs"]
    hook["url"] = url
    hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    config["route"].update(group_wait="1s", group_interval="1s")
    return yaml.safe_dump(config)


def prometheus_config(tmp_path: Path, *, target: str, alertmanager: str, token: str) -> dict:
    """deploy/prometheus/prometheus.yml scraping our live server every second, with deploy/prometheus/alerts.yml
    evaluated every second and its `for:` durations dropped (they are minutes), nothing else changed."""
    token_file = tmp_path / "metrics-token"
    token_file.write_text(token)
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("for", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    [job] = config["scrape_configs"]
    job["scrape_timeout"] = "1s"
    job["authorization"]["credentials_file"] = str(token_file)
    # The shipped file finds every web container through Docker's DNS; here the one live server stands in.
    assert job.pop("dns_sd_configs")[0]["names"] == ["web", "web-scaled"]
    job["static_configs"] = [{"targets": [target]}]
    return config


@pytest.mark.django_db(transaction=True)
def test_a_late_sla_sweep_seen_by_prometheus_opens_an_incident_through_alertmanager_and_our_endpoint(
        live_server, settings, tmp_path, incident_factory):
    from incidents.models import Channel, Incident, ResolutionCode
    from monitoring.models import Alert
    from monitoring.sources import event_source_create
    from sla.defaults import ensure_defaults
    from sla.models import ClockState, SlaClock
    from sla.sweep import sla_sweep

    alertmanager_binary()
    binary("prometheus", "prometheus")
    ResolutionCode.objects.get_or_create(code="fixed", defaults={"label": "Fixed"})
    settings.METRICS_TOKEN = "prom-scrape-token"
    Heartbeat.objects.create(name="worker", seen_at=timezone.now())  # a healthy desk but for the SLA sweep
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):  # no broker: the relay below does the work
        ensure_defaults()  # a transactional test starts from an emptied database: bring back the SLA policies
        incident = incident_factory(title="Mail server slow")
        assert SlaClock.objects.filter(ticket_id=incident.id, state=ClockState.RUNNING).update(
            due_at=timezone.now() - timedelta(hours=1)) >= 1
        source, event_token = event_source_create(name="prometheus", kind="alertmanager")
        live = live_server.url.removeprefix("http://")

        am = Alertmanager(tmp_path, webhook_url="unused", token="unused")
        am.config.write_text(alertmanager_config(tmp_path, f"{live_server.url}/api/v1/integrations/alertmanager/",
                                                 event_token))
        with am, Prometheus(tmp_path / "prometheus", prometheus_config(
                tmp_path, target=live, alertmanager=f"127.0.0.1:{am.port}", token="prom-scrape-token")) as prom:
            stop_relay = _start_relay()  # beat's outbox relay, every 200 ms: it processes the stored events
            try:
                # Prometheus scrapes with the token (up == 1) and sees the lag.
                assert wait_for(lambda: [r["value"][1] for r in prom.query('up{job="servicedesk"}')] == ["1"],
                                timeout=30), prom.log()[-3000:]
                assert float(prom.query("servicedesk_sla_sweep_lag_seconds")[0]["value"][1]) > 3500

                assert wait_for(lambda: Incident.objects.filter(channel=Channel.MONITORING).exists(), timeout=90), (
                    f"no incident; firing in Prometheus: {prom.firing()}; alertmanager:\n{am.log()[-2000:]}")
                # Only the SLA rule fires on a desk that is otherwise healthy.
                assert prom.firing() == ["ServicedeskSlaSweepLagging"]
                opened = Incident.objects.get(channel=Channel.MONITORING)
                assert "SLA sweep" in opened.title
                alert = Alert.objects.get(source=source)
                assert alert.status == "firing" and alert.incident_id == opened.id
                assert alert.labels["alertname"] == "ServicedeskSlaSweepLagging"
                assert alert.labels["service"] == "servicedesk"

                # The sweep runs: the lag is gone, Prometheus resolves the alert, Alertmanager says so, it clears.
                sla_sweep()
                assert wait_for(lambda: Alert.objects.filter(id=alert.id, status="resolved").exists(), timeout=90), (
                    f"not cleared; firing in Prometheus: {prom.firing()}; alertmanager:\n{am.log()[-2000:]}")
                assert Incident.objects.filter(channel=Channel.MONITORING).count() == 1
            finally:
                stop_relay()


def _start_relay():
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                outbox_relay(min_age=timedelta(0))
            finally:
                connection.close()
            stop.wait(0.2)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def finish():
        stop.set()
        thread.join(timeout=30)

    return finish

