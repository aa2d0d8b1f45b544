"""A real LDAP directory for the sign-in tests: Debian's slapd with a throwaway config and database.

    with Slapd() as directory:
        directory.add_user("dora", "pw", given="Dora", sn="Explorer", mail="dora@example.org")
        directory.set_members("sd-agents", ["dora"])

slapd listens on a free 127.0.0.1 port (`url`), configured by a slapd.conf file (slapd -f) in a temp dir
with the mdb backend there too, the standard schemas (core, cosine, inetorgperson, nis) and access rules
like a company directory's: anonymous clients may only bind, the service account (`bind_dn`) reads.
Entries are loaded and changed with ldap-utils (ldapadd, ldapmodify) as the directory's root DN.

`tls=True` also gives it a certificate for IP:127.0.0.1 signed by a throwaway CA (`ca_file`), made with
the openssl CLI, so clients can use StartTLS and verify the server. slapd runs in the foreground
(-d 0) and is stopped by its PID. If slapd is not installed this raises: the LDAP tests fail, never skip
(.ci/run installs it).
"""

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile

from tests.peers import free_port, listening, stop_process, wait_for_peer

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
SERVICE_DN = f"cn=servicedesk,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "service-secret"

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
{tls}
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {root}/db
index objectClass eq
index uid eq
index member eq
access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to *
    by users read
    by * none
"""

BASE_LDIF = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services

dn: {SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: servicedesk
userPassword: {{password}}
"""


def ssha(password: str) -> str:
    """The {SSHA} hash slapd checks a simple bind against (salted SHA-1, as slappasswd makes it)."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 (LDAP's own scheme, test data)
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def slapd_binary() -> str:
    binary = shutil.which("slapd") or ("/usr/sbin/slapd" if os.path.exists("/usr/sbin/slapd") else None)
    if binary is None or shutil.which("ldapadd") is None:
        raise RuntimeError("slapd and ldap-utils are needed for the LDAP tests: apt-get install slapd ldap-utils "
                           "(.ci/run installs them)")
    return binary


class Slapd:
    def __init__(self, *, tls: bool = False):
        self.binary = slapd_binary()
        self.tls = tls
        self.root = tempfile.mkdtemp(prefix="sd-slapd-")
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.ca_file = os.path.join(self.root, "ca.pem")
        self.config_file = os.path.join(self.root, "slapd.conf")
        self.log_file = os.path.join(self.root, "slapd.log")
        self.bind_dn, self.bind_password = SERVICE_DN, SERVICE_PASSWORD
        self.people, self.groups, self.suffix = PEOPLE, GROUPS, SUFFIX
        self.process = None

    # --- setup ---

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.root)

    def _certificates(self) -> str:
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-days", "2", "-subj", "/CN=Servicedesk test CA", "-keyout", "ca.key", "-out", "ca.pem")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
        with open(os.path.join(self.root, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        self._openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                      "-days", "2", "-extfile", "san.ext", "-out", "server.pem")
        return (f"TLSCACertificateFile {self.root}/ca.pem\nTLSCertificateFile {self.root}/server.pem\n"
                f"TLSCertificateKeyFile {self.root}/server.key")

    def _ldap(self, tool: str, ldif: str):
        result = subprocess.run(
            [tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD], input=ldif, text=True,
            capture_output=True, timeout=20,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr}\n{ldif}")

    # --- lifecycle ---

    def __enter__(self):
        os.makedirs(os.path.join(self.root, "db"))
        with open(self.config_file, "w") as f:
            f.write(SLAPD_CONF.format(root=self.root, suffix=SUFFIX, root_dn=ROOT_DN, root_pw=ssha(ROOT_PASSWORD),
                                      tls=self._certificates() if self.tls else ""))
        with open(self.log_file, "w") as log:
            # -d 0: stay in the foreground (stopped by its PID), log nothing but what goes wrong at start.
            self.process = subprocess.Popen([self.binary, "-f", self.config_file, "-h", f"{self.url}/", "-d", "0"],
                                            stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_peer(self.process, lambda: listening(self.port), name=f"slapd on {self.url}", seconds=20,
                          log=self._log)
        except RuntimeError:
            self.stop()
            raise
        self._ldap("ldapadd", BASE_LDIF.replace("{password}", ssha(SERVICE_PASSWORD)))
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def stop(self):
        stop_process(self.process)

    def _log(self) -> str:
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return "(no log)"

    # --- directory content ---

    def user_dn(self, uid: str) -> str:
        return f"uid={uid},{PEOPLE}"

    def group_dn(self, cn: str) -> str:
        return f"cn={cn},{GROUPS}"

    def add_user(self, uid: str, password: str, *, given: str, sn: str, mail: str, uid_number: int = 10000):
        self._ldap("ldapadd", f"""\
dn: {self.user_dn(uid)}
objectClass: inetOrgPerson
objectClass: posixAccount
uid: {uid}
cn: {given} {sn}
givenName: {given}
sn: {sn}
mail: {mail}
uidNumber: {uid_number}
gidNumber: {uid_number}
homeDirectory: /home/{uid}
userPassword: {ssha(password)}
""")

    def set_password(self, uid: str, password: str):
        self._ldap("ldapmodify", f"dn: {self.user_dn(uid)}\nchangetype: modify\nreplace: userPassword\n"
                                 f"userPassword: {ssha(password)}\n")

    def set_members(self, cn: str, uids: list[str]):
        """Create the group (groupOfNames) or replace its members. groupOfNames needs one member at least:
        an empty group keeps the directory's root DN, who signs in to nothing here."""
        members = "".join(f"member: {self.user_dn(uid)}\n" for uid in uids) or f"member: {ROOT_DN}\n"
        dn = self.group_dn(cn)
        exists = subprocess.run(
            ["ldapsearch", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD, "-b", dn, "-s", "base", "dn"],
            capture_output=True, text=True, timeout=20,
        ).returncode == 0
        if exists:
            self._ldap("ldapmodify", f"dn: {dn}\nchangetype: modify\nreplace: member\n{members}")
        else:
            self._ldap("ldapadd", f"dn: {dn}\nobjectClass: groupOfNames\ncn: {cn}\n{members}")


def configure_ldap(settings, directory: Slapd, **overrides):
    """Point the project's LDAP_* settings (pytest-django's `settings` fixture) at this directory, as an
    OpenLDAP deployment would set them, and put the LDAP backend between axes and ModelBackend as settings.py
    does when LDAP_SERVER_URI is set. Groups: sd-agents/sd-managers/sd-admins give the roles, network and
    desk the teams Network and Service Desk."""
    values = {
        "LDAP_SERVER_URI": directory.url,
        "LDAP_BIND_DN": directory.bind_dn,
        "LDAP_BIND_PASSWORD": directory.bind_password,
        "LDAP_USER_SEARCH_BASE": directory.people,
        "LDAP_USER_FILTER": "(uid=%(user)s)",
        "LDAP_GROUP_SEARCH_BASE": directory.groups,
        "LDAP_GROUP_TYPE": "groupOfNames",
        "LDAP_GROUP_FILTER": "",
        "LDAP_START_TLS": False,
        "LDAP_CA_FILE": "",
        "LDAP_TIMEOUT": 5,
        "LDAP_GROUP_ROLES": {directory.group_dn("sd-agents"): "agent", directory.group_dn("sd-managers"): "manager",
                             directory.group_dn("sd-admins"): "admin"},
        "LDAP_GROUP_TEAMS": {directory.group_dn("network"): "Network", directory.group_dn("desk"): "Service Desk"},
    }
    values.update(overrides)
    for name, value in values.items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [
        "servicedesk.signin.LockoutBackend",
        "servicedesk.ldap_signin.DirectoryLDAPBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
