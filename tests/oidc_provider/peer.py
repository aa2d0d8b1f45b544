"""Start the test OpenID provider (this directory's Django project) as a real process on 127.0.0.1.

    with OidcProvider() as idp:
        idp.register_client(client_id, secret, redirect_uri)
        idp.user("alice", email="alice@contoso.test", groups=["sd-agents"])
        idp.issuer  # http://127.0.0.1:<port>/o, its discovery document under /.well-known/openid-configuration

Its SQLite database and RSA signing key (made here, at start) live in a temporary directory removed on exit.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.peers import free_port, stop_process, wait_for_peer

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Contoso-pass-2026!"


class OidcProvider:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="sd-idp-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.url}/o"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        self.process = None
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
                    "IDP_DIR": str(self.dir), "IDP_ISSUER": self.issuer, "PYTHONPATH": str(ROOT)}
        # The service desk's own settings must not leak into the provider's process.
        for name in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"):
            self.env.pop(name, None)

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "django", *args], cwd=ROOT, env=self.env, check=True,
                       capture_output=True, timeout=60)

    def __enter__(self):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.dir / "rsa.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.manage("migrate", "--run-syncdb", "--verbosity", "0")
        self.log = open(self.dir / "server.log", "wb")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for_peer(self.process, self._answers, name="the test OpenID provider", seconds=30,
                          log=self.server_log)
        except RuntimeError:
            self.__exit__(None, None, None)
            raise
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.discovery_url, timeout=2) as response:  # noqa: S310 - loopback
                return response.status == 200
        except OSError:
            return False

    def server_log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __exit__(self, *exc):
        stop_process(self.process)
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def register_client(self, client_id: str, client_secret: str, redirect_uri: str,
                        post_logout_redirect_uri: str = "") -> None:
        args = ["idp_client", "--client-id", client_id, "--client-secret", client_secret,
                "--redirect-uri", redirect_uri]
        if post_logout_redirect_uri:
            args += ["--post-logout-redirect-uri", post_logout_redirect_uri]
        self.manage(*args)

    def user(self, username: str, *, email: str, name: str = "", groups: tuple[str, ...] | list[str] = (),
             verified: bool = True, password: str = PASSWORD) -> None:
        """Create or update a person of the provider's directory (their next sign-in carries these claims)."""
        args = ["idp_user", username, "--password", password, "--email", email, "--name", name,
                "--groups", ",".join(groups)]
        if not verified:
            args.append("--unverified")
        self.manage(*args)
