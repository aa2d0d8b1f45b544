"""The scaled profile's proxy for real: Debian's nginx runs the shipped deploy/nginx/nginx.conf (only its listen
port, its upstream and its temporary paths rewritten to this machine) in front of a real gunicorn started with
the scaled web containers' proxy settings from docker-compose.yml, and a browser-like client signs in through it
on http://localhost:<port>, sending the Origin a browser sends. Skipped, saying so, without nginx."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import PASSWORD
from tests.peers import free_port, stop_process
from tests.servicedesk.test_web_processes import real_password
from tests.workers import gunicorn_server, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def compose_value(value: str) -> str:
    """`${NAME:-default}` as docker compose reads it with NAME unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def scaled_proxy_env() -> dict:
    web = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web-scaled"]["environment"]
    return {name: compose_value(web[name]) for name in ("ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "TRUSTED_PROXY_COUNT")}


def shipped_config_for(upstream: str, port: int, tmp_path: Path) -> str:
    config = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    assert "listen 8080;" in config and "set $web web-scaled:8000;" in config
    config = config.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    config = config.replace("set $web web-scaled:8000;", f"set $web {upstream};")
    config = re.sub(r"\n\s*resolver [^\n]*", "\n", config)  # Docker's DNS; an address needs no resolver
    temp = "".join(f"    {kind}_temp_path {tmp_path / kind};\n" for kind in ("client_body", "proxy", "fastcgi",
                                                                              "uwsgi", "scgi"))
    config = config.replace("http {\n", "http {\n" + temp, 1)
    return f"pid {tmp_path / 'nginx.pid'};\n" + config


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed: the shipped proxy config was not run")
def test_a_browser_signs_in_through_the_shipped_nginx_config(make_user, tmp_path):
    real_password(make_user("agent", username="wendy", teams=["Service Desk"]))
    env = scaled_proxy_env()
    assert env["TRUSTED_PROXY_COUNT"] == "1" and "localhost" in env["ALLOWED_HOSTS"].split(",")
    with gunicorn_server(tmp_path=tmp_path, workers=1, env=env) as (base, log):
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(shipped_config_for(base.removeprefix("http://"), port, tmp_path))
        nginx_log = open(tmp_path / "nginx.out", "w+")  # noqa: SIM115 - closed below
        proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
                                stdout=nginx_log, stderr=subprocess.STDOUT)
        try:
            site = f"http://localhost:{port}"

            def answers() -> bool:
                try:
                    return requests.get(f"{site}/healthz", timeout=2).status_code in (200, 503)
                except requests.RequestException:
                    return False

            if not wait_for(answers, timeout=30, interval=0.1):
                nginx_log.seek(0)
                pytest.fail(f"nginx did not answer:\n{nginx_log.read()[-3000:]}")
            page = requests.get(f"{site}/login/", timeout=30)
            assert page.status_code == 200
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            # What a browser sends with the form: its cookie, the page's Origin (with the port) and Referer.
            signed_in = requests.post(
                f"{site}/login/", data={"username": "wendy", "password": PASSWORD, "csrfmiddlewaretoken": csrf},
                cookies={"csrftoken": page.cookies["csrftoken"]},
                headers={"Origin": site, "Referer": f"{site}/login/"}, allow_redirects=False, timeout=30)
            assert signed_in.status_code == 302, signed_in.text[:800]
            assert "sessionid" in signed_in.cookies
            workspace = requests.get(f"{site}/agent/", cookies={"sessionid": signed_in.cookies["sessionid"]},
                                     allow_redirects=False, timeout=30)
            assert workspace.status_code == 200
            # The request did come through nginx: gunicorn logged it from the proxy.
            assert " POST /login/ 302" in log.read_text()
        finally:
            stop_process(proc, timeout=15)
            nginx_log.close()
