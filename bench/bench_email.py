"""The email channel (issue 12): how fast one process understands mail, which of its queries grow with the
history of inbound mail, and how fast an IMAP poll takes mail in. Figures, not a pass/fail test.

1. Processing: a realistic mix of mails (new mails from known and unknown senders, replies threading by one of
   our outgoing mails' Message-ID and by the subject's number tag, auto-replies, a few with a 50 KB attachment),
   each stored with email_channel.processing.inbound_store and processed with inbound_process in this process
   (what import_email does; a worker runs the same function). Baseline in the same run: the bare INSERT of the
   same rows, one commit per mail (what keeping a mail costs); the ratio is what understanding a mail costs.
   Rounds interleave the two and the spread across rounds is printed.
2. History: the queries that grow with the number of InboundMessage rows, at 10k and 1M rows (90 days, ~5k
   senders, small raw payload): the rate-limit count, the Message-ID dedupe lookup, the admin list's first
   page (the changelist through Django's test client as a superuser) and mailboxes_due. Both sizes exist at
   once, each in a schema of its own holding a copy of the table; the search_path picks one, so repetitions
   alternate between the sizes. EXPLAIN's first line shows the plan.
3. IMAP: a real Dovecot (tests.peers.Dovecot): 1,000 mails appended, mailbox_poll storing them, then polls
   with nothing new.

    python3 dev.py bench bench/bench_email.py
    SD_BENCH_LARGE=200000 SD_BENCH_EMAIL_MAILS=600 SD_BENCH_EMAIL_IMAP=300 ... for a quicker run
"""

import os
import random
import shutil
import statistics
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

warnings.filterwarnings("ignore", message="No directory at")  # static files are not collected for a bench
os.environ["CELERY_BROKER_URL"] = "memory://"  # before Django and Celery read it: no broker in the measurement
MEDIA = None if "MEDIA_ROOT" in os.environ else tempfile.mkdtemp(prefix="sd-bench-email-media-")
if MEDIA:
    os.environ["MEDIA_ROOT"] = MEDIA  # the attachments' files, removed at the end

from common import setup_bench_database, summary, timed  # noqa: E402

setup_bench_database("servicedesk_bench_email")

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from email_channel.imap import LEASE, mailbox_poll, mailboxes_due  # noqa: E402
from email_channel.models import InboundMessage, Mailbox  # noqa: E402
from email_channel.processing import _header_peek, inbound_process, inbound_store  # noqa: E402
from incidents.models import Incident  # noqa: E402
from servicedesk.models import OutboxMessage  # noqa: E402
from servicedesk.notifications import email_message_id  # noqa: E402
from servicedesk.roles import Role  # noqa: E402
from servicedesk.services import user_provision  # noqa: E402

MAILS = int(os.environ.get("SD_BENCH_EMAIL_MAILS", "2000"))
ROUNDS = int(os.environ.get("SD_BENCH_EMAIL_ROUNDS", "4"))
SIZES = [10_000, int(os.environ.get("SD_BENCH_LARGE", "1000000"))]
REPEAT = int(os.environ.get("SD_BENCH_REPEAT", "15"))
IMAP_MAILS = int(os.environ.get("SD_BENCH_EMAIL_IMAP", "1000"))
KNOWN_SENDERS = 400
HISTORY_SENDERS = 5000
RUN = timezone.now().strftime("%H%M%S")
DESK = "support@bench-desk.example"
State = InboundMessage.State

# The mix of part 1 (shares of MAILS); "attachment" is a new mail from a known sender with a 50 KB log file.
MIX = {"new, known sender": 0.33, "new, unknown sender": 0.15, "reply by Message-ID": 0.20, "reply by subject tag": 0.17,
       "auto-reply": 0.10, "new with 50 KB attachment": 0.05}


def load() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"


# --- mails ---------------------------------------------------------------------------------------------------


def mail(*, sender: str, subject: str, text: str, headers=None, attachment: bytes | None = None) -> bytes:
    """A mail as a person's client sends it (CRLF line ends, as IMAP and the pipe hand it over)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = DESK
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="bench-client.example")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if attachment is not None:
        message.add_attachment(attachment, maintype="text", subtype="plain", filename="server.log")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


BODY = ("Hello,\n\nsince this morning the VPN client drops the connection every few minutes; I restarted the laptop "
        "and the router, it still happens. Colleagues on the same floor do not see it.\n\nThanks,\n{name}\n")
QUOTE = ("\n\nOn Mon, 2 Mar at 09:14, Service Desk <support@bench-desk.example> wrote:\n> ## Reply above this line "
         "##\n> Your incident {number} was received.\n> We will come back to you.\n")
LOG = ("".join(f"2026-01-01T10:{i // 60 % 60:02d}:{i % 60:02d} vpn[812]: keepalive timeout, reconnecting (try {i})\n"
               for i in range(800)).encode()[:50 * 1024])


class Desk:
    """What the mails of part 1 refer to: known senders, the tickets made so far and our mails about them."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.known = [f"Known Person{i} <bench-known-{i}@customer.example>" for i in range(KNOWN_SENDERS)]
        self.unknown = 0

    def tickets(self) -> list[tuple[str, str, str]]:
        """(number, requester address, title) of this run's open incidents from mail."""
        ids = InboundMessage.objects.filter(mailbox__address=DESK, action="created").values_list("ticket_id",
                                                                                                  flat=True)
        return list(Incident.objects.filter(id__in=list(ids), status__in=["new", "in_progress"])
                    .values_list("number", "requester__email", "title"))

    def our_mails(self, numbers: set[str]) -> list[tuple[str, str]]:
        """(our Message-ID, its recipient) of the "incident created" mails about these tickets."""
        out = []
        for message in OutboxMessage.objects.filter(handler="email.send", payload__thread__kind="incident"):
            if message.payload["thread"].get("number") in numbers and message.payload.get("to"):
                out.append((email_message_id(message), message.payload["to"][0]))
        return out

    def batch(self, count: int, *, new_only: bool = False) -> list[tuple[str, bytes]]:
        """`count` mails of MIX, shuffled; replies answer tickets made before this batch."""
        rng = self.rng
        tickets = self.tickets()
        by_number = {number: (address, title) for number, address, title in tickets}
        ours = self.our_mails(set(by_number))
        kinds = [kind for kind, share in MIX.items() for _ in range(round(share * count))]
        kinds = (kinds + ["new, known sender"] * count)[:count]
        if new_only:
            kinds = [k if k.startswith("new") else "new, known sender" for k in kinds]
        rng.shuffle(kinds)
        out = []
        for kind in kinds:
            if kind == "reply by Message-ID" and not ours:
                kind = "reply by subject tag"
            if kind == "new, known sender" or kind == "new with 50 KB attachment":
                sender = rng.choice(self.known)
                raw = mail(sender=sender, subject=rng.choice(["VPN drops every few minutes", "Cannot print to floor 2",
                                                              "Outlook asks for my password again"]),
                           text=BODY.format(name=sender.split("<")[0]),
                           attachment=LOG if kind.startswith("new with") else None)
            elif kind == "new, unknown sender":
                self.unknown += 1
                sender = f"New Sender{self.unknown} <new-{RUN}-{self.unknown}@elsewhere.example>"
                raw = mail(sender=sender, subject="Access to the shared drive",
                           text=BODY.format(name=sender.split("<")[0]))
            elif kind == "reply by Message-ID":
                message_id, address = rng.choice(ours)
                raw = mail(sender=address, subject="Re: your ticket",
                           text="It happened again at 10:40, see the time stamp." + QUOTE.format(number="it"),
                           headers={"In-Reply-To": message_id, "References": message_id})
            elif kind.startswith("reply by"):
                number, (address, title) = rng.choice(list(by_number.items()))
                raw = mail(sender=address, subject=f"RE: [{number}] {title}",
                           text="Still the same after the update." + QUOTE.format(number=number))
            else:  # an out-of-office answer to one of our mails
                number, (address, title) = rng.choice(list(by_number.items()))
                raw = mail(sender=address, subject=f"Automatic reply: [{number}] {title}",
                           text="I am out of the office until Monday.",
                           headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"})
            out.append((kind, raw))
        return out


# --- part 1: processing -----------------------------------------------------------------------------------------

COLUMNS = ["mailbox_id", "source", "uidvalidity", "uid", "message_id", "from_address", "subject", "received_at", "raw",
           "size", "state", "reason", "error", "attempts", "processed_at", "action", "ticket_kind", "ticket_id",
           "ticket_number", "entry_id"]
INSERT_ROW = (f"INSERT INTO email_channel_inboundmessage ({', '.join(COLUMNS)}) VALUES "
              f"(%s, 'pipe', NULL, NULL, %s, %s, %s, now(), %s, %s, 'new', '', '', 0, NULL, '', '', NULL, '', NULL)")


def raw_rows(mailbox_id: int, mails: list[tuple[str, bytes]]) -> list[tuple]:
    """The rows inbound_store writes (header fields peeked beforehand: not part of the baseline)."""
    return [(mailbox_id, *_header_peek(raw), raw, len(raw)) for _, raw in mails]


def raw_insert(rows: list[tuple]) -> list[float]:
    """The bare INSERT of each row, one commit each (autocommit), as a mail is stored: ms per mail."""
    samples = []
    with connection.cursor() as cursor:
        for row in rows:
            started = time.perf_counter()
            cursor.execute(INSERT_ROW, row)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def ours(mailbox: Mailbox, mails: list[tuple[str, bytes]]) -> list[tuple[str, float, float, str]]:
    """Store and process each mail: (kind, store ms, process ms, outcome)."""
    out = []
    for kind, raw in mails:
        started = time.perf_counter()
        stored = inbound_store(mailbox=mailbox, raw=raw, source=InboundMessage.Source.PIPE)
        middle = time.perf_counter()
        message = inbound_process(message_id=stored.id)
        ended = time.perf_counter()
        outcome = message.action or (f"{message.state}: {message.reason.split(':')[0]}" if message.reason
                                     else f"{message.state}: {message.error[:60]}")
        out.append((kind, (middle - started) * 1000, (ended - middle) * 1000, outcome))
    return out


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_processing() -> None:
    User = get_user_model()
    for i in range(KNOWN_SENDERS):
        if not User.objects.filter(username=f"bench-known-{i}").exists():
            user_provision(username=f"bench-known-{i}", role=Role.REQUESTER, email=f"bench-known-{i}@customer.example",
                           first_name="Known", last_name=f"Person{i}")
    with connection.cursor() as cursor:  # each run starts from no inbound mail (the rate limit counts them)
        cursor.execute("TRUNCATE email_channel_inboundmessage")
    mailbox, _ = Mailbox.objects.update_or_create(name="Bench support", defaults={
        "address": DESK, "host": "imap.bench-desk.example", "active": False, "accept": Mailbox.Accept.ANY,
        "create_accounts": True, "rate_limit_per_hour": 20, "creates": Mailbox.Creates.INCIDENT})
    baseline, _ = Mailbox.objects.update_or_create(name="Bench baseline", defaults={
        "address": "baseline@bench-desk.example", "host": "imap.bench-desk.example", "active": False})

    desk = Desk(random.Random(12))
    warm = desk.batch(max(60, MAILS // 20), new_only=True)  # not measured: imports, caches, tickets to answer
    ours(mailbox, warm)
    raw_insert(raw_rows(baseline.id, warm[:20]))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE email_channel_inboundmessage; ANALYZE servicedesk_outboxmessage")

    results, base, rounds = [], [], []
    per_round = MAILS // ROUNDS
    for r in range(ROUNDS):
        mails = desk.batch(per_round)
        rows = raw_rows(baseline.id, mails)
        if r % 2 == 0:
            b = raw_insert(rows)
        started = time.perf_counter()
        got = ours(mailbox, mails)
        elapsed = time.perf_counter() - started
        if r % 2 == 1:
            b = raw_insert(rows)
        results += got
        base += b
        rounds.append((len(mails) / elapsed, len(mails) / (sum(b) / 1000)))

    elapsed = sum(s + p for _, s, p, _ in results) / 1000
    rate = len(results) / elapsed
    raw_rate = len(base) / (sum(base) / 1000)
    print(f"\n== 1. processing {len(results):,} mails, store + process one by one in this process "
          f"({ROUNDS} rounds, the baseline before the round in even rounds, after it in odd ones; {load()})")
    print(f"  inbound_store + inbound_process   {rate:8,.1f} mails/s   ({elapsed:.1f} s; per mail p50 "
          f"{statistics.median([s + p for _, s, p, _ in results]):6.2f} ms, p95 {pct([s + p for _, s, p, _ in results], .95):6.2f} ms)")
    store = [s for _, s, _, _ in results]
    print(f"    of which inbound_store          {1000 / statistics.mean(store):8,.1f} mails/s   (per mail p50 "
          f"{statistics.median(store):6.2f} ms, p95 {pct(store, .95):6.2f} ms)")
    print(f"  raw INSERT, one commit per mail   {raw_rate:8,.1f} mails/s   (per mail p50 {statistics.median(base):6.2f} ms,"
          f" p95 {pct(base, .95):6.2f} ms)")
    print(f"  time per mail, store + process / raw INSERT: x{raw_rate / rate:.1f}   store alone / raw INSERT: "
          f"x{statistics.mean(store) / statistics.mean(base):.2f}")
    print("  rounds (mails/s, ours | raw): " + "   ".join(f"{a:,.1f} | {b:,.0f}" for a, b in rounds)
          + f"   spread of ours: {min(a for a, _ in rounds):,.1f}..{max(a for a, _ in rounds):,.1f}")
    print(f"\n  {'kind':<28} {'n':>5}  {'store p50':>9}  {'process p50':>11}  {'p95':>8}  {'total p50':>9}  {'p95':>8}"
          "   outcomes")
    by_kind = defaultdict(list)
    for kind, s, p, outcome in results:
        by_kind[kind].append((s, p, outcome))
    for kind in MIX:
        rows = by_kind.get(kind, [])
        if not rows:
            continue
        s, p, t = [x[0] for x in rows], [x[1] for x in rows], [x[0] + x[1] for x in rows]
        outcomes = ", ".join(f"{o} {n}" for o, n in Counter(x[2] for x in rows).most_common())
        print(f"  {kind:<28} {len(rows):5d}  {statistics.median(s):7.2f}ms  {statistics.median(p):9.2f}ms  "
              f"{pct(p, .95):6.2f}ms  {statistics.median(t):7.2f}ms  {pct(t, .95):6.2f}ms   {outcomes}")


# --- part 2: the queries that grow with history ----------------------------------------------------------------

HISTORY = """
INSERT INTO {schema}.email_channel_inboundmessage ({columns})
SELECT mb, CASE WHEN g %% 5 = 0 THEN 'pipe' ELSE 'imap' END, CASE WHEN g %% 5 = 0 THEN NULL ELSE 1 END,
       CASE WHEN g %% 5 = 0 THEN NULL ELSE g END, 'hist-' || g || '@client.example', sender,
       'Printer on floor ' || (g %% 7) || ' jams', at,
       convert_to('From: <' || sender || E'>\\r\\nTo: <desk@bench-desk.example>\\r\\nSubject: Printer jams\\r\\n'
                  'Message-ID: <hist-' || g || E'@client.example>\\r\\n\\r\\nIt jams on every page.\\r\\n', 'UTF8'),
       200, st, CASE WHEN st = 'ignored' THEN 'auto-replied: machine mail is not answered' ELSE '' END,
       CASE WHEN st = 'failed' THEN 'InvalidInput: category' ELSE '' END, CASE WHEN st = 'new' THEN 0 ELSE 1 END,
       CASE WHEN st = 'new' THEN NULL ELSE at + interval '2 seconds' END,
       CASE WHEN st = 'processed' THEN (CASE WHEN g %% 3 = 0 THEN 'created' ELSE 'replied' END) ELSE '' END,
       CASE WHEN st = 'processed' THEN 'incident' ELSE '' END, CASE WHEN st = 'processed' THEN g END,
       CASE WHEN st = 'processed' THEN 'INC' || lpad(g::text, 7, '0') ELSE '' END, NULL
FROM (
    SELECT g, %(mailboxes)s::bigint[] AS mbs, now() - make_interval(secs => random() * 90 * 86400) AS at,
           'sender' || floor(random() * %(senders)s)::int || '@customer' || (g %% 50) || '.example' AS sender,
           CASE WHEN random() < 0.90 THEN 'processed' WHEN random() < 0.9 THEN 'ignored'
                WHEN random() < 0.5 THEN 'failed' ELSE 'new' END AS st
    FROM generate_series(1, %(n)s) g
) r, LATERAL (SELECT mbs[1 + g %% cardinality(mbs)] AS mb) m
ORDER BY at  -- the table grows in time order, as in production
"""


# Pairs (the copy's index name, the original's) matched by their definition without names and schemas.
RENAME = """
SELECT c.indexname, o.indexname FROM pg_indexes c JOIN pg_indexes o
  ON o.schemaname = 'public' AND o.tablename = c.tablename
 AND regexp_replace(regexp_replace(o.indexdef, 'INDEX \\S+ ON \\S+', ''), 'public\\.', '', 'g')
   = regexp_replace(regexp_replace(c.indexdef, 'INDEX \\S+ ON \\S+', ''), '\\w+\\.', '', 'g')
WHERE c.schemaname = %s AND c.tablename = 'email_channel_inboundmessage' AND c.indexname <> o.indexname
"""


def history(schema: str, n: int, mailbox_ids: list[int]) -> float:
    """A schema `schema` holding a copy of the inbound table (indexes included) filled with `n` rows."""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        cursor.execute(f"CREATE TABLE {schema}.email_channel_inboundmessage "
                       "(LIKE public.email_channel_inboundmessage INCLUDING ALL)")
        cursor.execute(HISTORY.format(schema=schema, columns=", ".join(COLUMNS)),
                       {"mailboxes": mailbox_ids, "senders": HISTORY_SENDERS, "n": n})
        cursor.execute(RENAME, [schema])  # the copy's indexes get the migrations' names, for the plans
        for old, new in cursor.fetchall():
            cursor.execute(f'ALTER INDEX {schema}."{old}" RENAME TO "{new}"')
        cursor.execute(f"VACUUM ANALYZE {schema}.email_channel_inboundmessage")  # as autovacuum does after a load
    return time.perf_counter() - started


def use(schema: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SET search_path TO {schema}, public")


def busiest_sender(schema: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT from_address FROM {schema}.email_channel_inboundmessage "
                       "WHERE received_at > now() - interval '1 day' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
        row = cursor.fetchone()
    return row[0] if row else "sender1@customer1.example"


def rate_count(sender: str):
    def run():
        now = timezone.now()
        return (InboundMessage.objects.filter(from_address=sender, received_at__gte=now - timedelta(hours=1),
                                              state=State.PROCESSED).exclude(id=0).count())
    return run


def dedupe(message_id: str):
    def run():
        return (InboundMessage.objects.filter(message_id=message_id, state__in=[State.PROCESSED, State.IGNORED])
                .exclude(id=0).order_by("id").values_list("id", flat=True).first())
    return run


def plan(sql: str, params=()) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params or None)
        lines = [row[0] for row in cursor.fetchall()]
    scans = [line.strip().lstrip("-> ") for line in lines[1:] if "Scan" in line]
    first = lines[0].split("  (cost")[0]
    return first + (f"  | {scans[0].split('  (cost')[0]}" if scans and "Scan" not in first else "")


def admin_page(client: Client):
    def run():
        response = client.get("/admin/email_channel/inboundmessage/")
        assert response.status_code == 200, response.status_code
        return response
    return run


def bench_history() -> None:
    mailbox_ids = []
    for i in range(3):
        box, _ = Mailbox.objects.update_or_create(name=f"Bench history {i}", defaults={
            "address": f"history{i}@bench-desk.example", "host": "imap.bench-desk.example", "active": True})
        mailbox_ids.append(box.id)
    for i in range(3, 20):  # more mailboxes, a few of them inactive, for mailboxes_due to choose from
        Mailbox.objects.update_or_create(name=f"Bench history {i}", defaults={
            "address": f"history{i}@bench-desk.example", "host": "imap.bench-desk.example", "active": i % 4 != 0})
    schemas = {size: f"bench_email_hist_{size}" for size in SIZES}
    print(f"\n== 2. queries that grow with history: {' and '.join(f'{s:,}' for s in SIZES)} InboundMessage rows "
          f"(90 days, ~{HISTORY_SENDERS:,} senders), each size in a schema of its own, repetitions alternating "
          "between them")
    for size, schema in schemas.items():
        print(f"  {size:>9,} rows inserted, indexed and analysed in {history(schema, size, mailbox_ids):5.1f} s")

    User = get_user_model()
    admin = User.objects.filter(username="bench-email-admin").first() or User.objects.create_superuser(
        "bench-email-admin", "bench-email-admin@bench-desk.example", None)
    client = Client()
    client.force_login(admin)

    base = timezone.now()
    tick = {"n": 0}

    def due():
        tick["n"] += 1  # each call LEASE and more later: every active mailbox is due again
        return mailboxes_due(now=base + tick["n"] * (LEASE + timedelta(minutes=1)))

    senders = {size: busiest_sender(schema) for size, schema in schemas.items()}
    queries = {
        "rate-limit count (one sender, last hour)": lambda size: rate_count(senders[size]),
        "Message-ID dedupe, a new mail's id": lambda size: dedupe(f"never-{RUN}@client.example"),
        "Message-ID dedupe, a known id": lambda size: dedupe(f"hist-{size // 2}@client.example"),
        "admin list, first page (whole request)": lambda size: admin_page(client),
        "mailboxes_due (20 mailboxes)": lambda size: due,
    }
    samples = defaultdict(list)
    for schema in schemas.values():  # warm-up: caches, first plans
        use(schema)
        for make in queries.values():
            make(SIZES[0])()
    for _ in range(REPEAT):
        for size, schema in (schemas.items() if _ % 2 == 0 else reversed(schemas.items())):
            use(schema)
            for name, make in queries.items():
                samples[(name, size)] += timed(make(size), 1)

    # The SQL each one runs, captured, EXPLAINed; the admin page's statements on the inbound table timed once each.
    plans = defaultdict(dict)
    statements = {}
    for size, schema in schemas.items():
        use(schema)
        for name, make in queries.items():
            with CaptureQueriesContext(connection) as captured:
                make(size)()
            mine = [q["sql"] for q in captured if "email_channel_" in q["sql"]
                    and q["sql"].lstrip().upper().startswith("SELECT")]
            if name.startswith("admin"):
                inbound = [sql for sql in mine if "email_channel_inboundmessage" in sql]
                statements[size] = []
                for sql in inbound:
                    started = time.perf_counter()
                    with connection.cursor() as cursor:
                        cursor.execute(sql)
                        cursor.fetchall()
                    statements[size].append(((time.perf_counter() - started) * 1000, sql, plan(sql)))
                mine = [sql for sql in inbound if "LIMIT" in sql and "ORDER BY" in sql] or inbound
            plans[name][size] = plan(mine[0]) if mine else "(no query seen)"

    small, large = SIZES
    print(f"\n  {'query':<42} {'p50 at ' + f'{small:,}':>16} {'p50 at ' + f'{large:,}':>18}  {'ratio':>6}   spread at "
          f"{large:,} (p50/p95, n)")
    for name in queries:
        a, b = samples[(name, small)], samples[(name, large)]
        print(f"  {name:<42} {statistics.median(a):13.2f} ms {statistics.median(b):15.2f} ms  x{statistics.median(b) / statistics.median(a):5.1f}"
              f"   {summary(b)}")
    print("\n  plans (EXPLAIN's first line, and the first scan below it when the first line is not one):")
    for name, by_size in plans.items():
        for size, line in by_size.items():
            print(f"  {name:<42} {size:>9,}: {line}")
    print(f"\n  the admin list's statements on the inbound table, each run once by hand ({load()}):")
    for size, rows in statements.items():
        for ms, sql, first in rows:
            print(f"  {size:>9,}  {ms:8.2f} ms  {sql[:90]}...\n  {'':>9}   plan: {first}")



# --- part 3: IMAP poll ---------------------------------------------------------------------------------------------


def bench_imap() -> None:
    from tests.peers import Dovecot

    user, password = "benchdesk", "bench-desk-pass"
    print(f"\n== 3. IMAP poll against a real Dovecot (tests.peers.Dovecot), {IMAP_MAILS:,} mails ({load()})")
    with Dovecot(users={user: password}) as server:
        settings.EMAIL_IMAP_CA_FILE = server.ca_file
        rng = random.Random(3)
        raws = [mail(sender=f"Poll Sender{i} <poll-{i % 300}@customer.example>",
                     subject=f"Poll test {i}", text=BODY.format(name=f"Sender {i}"),
                     attachment=LOG if rng.random() < 0.02 else None) for i in range(IMAP_MAILS)]
        started = time.perf_counter()
        with server.mailbox(user) as box:
            for raw in raws:
                box.append(raw, "INBOX")
        appended = time.perf_counter() - started
        print(f"  APPEND of {IMAP_MAILS:,} mails over one TLS session: {appended:.1f} s "
              f"({IMAP_MAILS / appended:,.0f} mails/s; setting up, not the measurement); "
              f"{sum(len(r) for r in raws) / 1e6:.1f} MB")
        polls, empties = [], []
        for attempt in range(3):  # three mailboxes on the same folder: each reads all of it once
            mailbox, _ = Mailbox.objects.update_or_create(name=f"Bench IMAP {attempt}", defaults={
                "address": f"imap{attempt}@bench-desk.example", "host": "127.0.0.1", "port": server.imaps_port,
                "security": Mailbox.Security.SSL, "username": user, "password": password, "active": True,
                "uidvalidity": None, "last_uid": 0, "lease_until": None, "last_error": ""})
            started = time.perf_counter()
            result = mailbox_poll(mailbox_id=mailbox.id)
            elapsed = time.perf_counter() - started
            assert not result.error and result.stored == IMAP_MAILS, result
            polls.append(elapsed)
            for _ in range(5):
                Mailbox.objects.filter(id=mailbox.id).update(lease_until=None)
                started = time.perf_counter()
                again = mailbox_poll(mailbox_id=mailbox.id)
                empties.append((time.perf_counter() - started) * 1000)
                assert again.stored == 0 and not again.error, again
        rates = [IMAP_MAILS / s for s in polls]
        print(f"  mailbox_poll storing {IMAP_MAILS:,} new mails: {statistics.median(rates):,.0f} mails/s (median of "
              f"{len(polls)} polls by 3 mailboxes of the same folder; {', '.join(f'{s:.1f} s' for s in polls)})")
        print(f"  mailbox_poll with nothing new (connect, TLS, login, SELECT, UID SEARCH, lease): {summary(empties)}")


def main() -> None:
    print(f"PostgreSQL {connection.cursor().connection.server_version}, {os.cpu_count()} CPUs, {load()} at start")
    started = time.perf_counter()
    bench_processing()
    bench_history()
    bench_imap()
    print(f"\nwhole run {time.perf_counter() - started:.0f} s, {load()} at the end")
    if MEDIA:
        shutil.rmtree(MEDIA, ignore_errors=True)


main()
