"""Shared set-up for benchmarks: dedicated PostgreSQL databases, migrated, Django ready; and the harness that
makes a figure trustworthy (docs/benchmarks.md):

- `SizeDatabases`: one database per size, all kept at once, so the sizes can be measured in alternation.
- `interleave`: rounds; in each, every size in turn (the order flips every round: 10k, 1M, 1M, 10k, ...), a
  warm-up call discarded after each switch, then each case's own code and its baseline alternately. Prints the
  median and the p10-p90 spread of every figure, and the per-round ratios (ours / baseline, large / small)
  with their min-max across rounds.
- `check_same`: a raw-SQL baseline must fetch the same rows in the same order with the same count as the page or
  API it stands beside; the harness compares them before timing anything and stops when they differ.
- `machine_load`: what else runs on the machine while a bench runs (the figures depend on it).
- `Gunicorn` and `http_sign_in`: the real HTTP server on loopback, with a session signed in through /login/.

Benchmarks print figures; they are not pass/fail tests. Run them with `python3 dev.py bench`.
"""

import http.client
import http.cookiejar
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent


def _bench_database(url, name: str, *, fresh: bool) -> None:
    import psycopg2

    admin = psycopg2.connect(host=url.hostname, port=url.port or 5432, user=url.username,
                             password=url.password, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        if fresh:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def bench_name(name: str) -> str:
    """A bench database's name; SD_BENCH_DB_PREFIX replaces its leading "servicedesk_bench" (so two checkouts
    benching on one server keep apart)."""
    prefix = os.environ.get("SD_BENCH_DB_PREFIX")
    if prefix and name.startswith("servicedesk_bench"):
        return prefix + name.removeprefix("servicedesk_bench")
    return name


def _server_url():
    return urlparse(os.environ.get("BENCH_SERVER_URL") or os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/servicedesk"))


def _migrate(url, name: str) -> None:
    """Migrate the database Django's default connection points at; when its tables no longer match this
    checkout's migrations (another branch's bench left it), start it afresh."""
    from django.core.management import call_command
    from django.db import DatabaseError, connections
    from django.db.migrations.exceptions import InconsistentMigrationHistory

    try:
        call_command("migrate", verbosity=0)
    except (DatabaseError, InconsistentMigrationHistory) as error:
        print(f"{name}: its tables do not match this checkout's migrations ({str(error).strip()}); "
              "starting it afresh")
        connections.close_all()
        _bench_database(url, name, fresh=True)
        call_command("migrate", verbosity=0)


def setup_bench_database(name: str = "servicedesk_bench") -> None:
    """A database of its own for a bench, kept between runs (generating a million rows takes a while) and
    migrated."""
    name = bench_name(name)
    url = _server_url()
    os.environ["BENCH_SERVER_URL"] = urlunparse(url)  # the server's address, whichever database is in use
    _bench_database(url, name, fresh=False)
    os.environ["DATABASE_URL"] = urlunparse(url._replace(path=f"/{name}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")
    os.environ["DEBUG"] = "0"
    # This process's cache keys apart from any other process sharing the Redis database.
    os.environ.setdefault("CACHE_KEY_PREFIX", f"sd-bench-{os.getpid()}")
    import django

    django.setup()
    _migrate(url, name)


def database_url(name: str) -> str:
    return urlunparse(_server_url()._replace(path=f"/{name}"))


class SizeDatabases:
    """One database per size (`<prefix>_<size>`), each migrated and kept between runs, all there at once so a
    bench can alternate between the sizes. `use(size)` points Django's default connection (and the cache's key
    prefix: each size keeps its own warm cache, as a server of that size would) at the size's database."""

    def __init__(self, prefix: str, sizes):
        self.sizes = list(sizes)
        self.names = {size: bench_name(f"{prefix}_{size}") for size in self.sizes}
        self.current = None
        url = _server_url()
        for size in self.sizes:
            if self.current is None:
                setup_bench_database(self.names[size])
                from django.core.cache import cache

                self._prefix = cache.key_prefix
                self.current = size
            else:
                _bench_database(url, self.names[size], fresh=False)
                self.use(size)
                _migrate(url, self.names[size])
        self.use(self.sizes[0])

    def use(self, size) -> None:
        from django.core.cache import cache
        from django.db import connection

        if self.current != size:
            connection.close()
            connection.settings_dict["NAME"] = self.names[size]
            self.current = size
        cache.key_prefix = f"{self._prefix}-{size}"

    def url(self, size) -> str:
        return database_url(self.names[size])

    def clear_caches(self) -> None:
        from django.core.cache import cache

        for size in self.sizes:
            cache.key_prefix = f"{self._prefix}-{size}"
            cache.clear()
        cache.key_prefix = f"{self._prefix}-{self.current}"


# --- timing --------------------------------------------------------------------------------------------


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples, q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between the closest ranks."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(samples: list[float]) -> str:
    """Median, p95 and the p10-p90 spread of a list of milliseconds."""
    return (f"p50 {statistics.median(samples):7.2f} ms   p95 {percentile(samples, .95):7.2f} ms   "
            f"p10-p90 {percentile(samples, .1):.2f}-{percentile(samples, .9):.2f}   (n={len(samples)})")


def spread(values: list[float], fmt: str = ".2f") -> str:
    """A figure measured once per round: its median and its min-max across the rounds."""
    if not values:
        return "n/a"
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


# --- what else runs on the machine ------------------------------------------------------------------------


def _cpu_ticks() -> dict[int, tuple[str, int]]:
    ticks = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        ticks[int(entry.name)] = (name, int(fields[11]) + int(fields[12]))  # utime + stime
    return ticks


def _own_tree() -> set[int]:
    """This process, its children and their children (a bench's gunicorn, workers, locust)."""
    parents = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    stat = f.read()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    mine, grew = {os.getpid()}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return mine


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its living descendants."""
    parents = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    stat = f.read()
                fields = stat[stat.rindex(")") + 2:].split()
                parents[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
            except (OSError, ValueError, IndexError):
                continue
    tree, grew = {pid}, True
    while grew:
        grew = False
        for child, (parent, _) in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    return sum(parents[p][1] for p in tree if p in parents) / os.sysconf("SC_CLK_TCK")


def machine_load(sample_seconds: float = 1.0) -> str:
    """One line on the machine's load: CPUs, load average, and the CPU others' processes used over a short
    sample (PostgreSQL backends count as others: they may serve this bench or anybody else)."""
    if not Path("/proc/loadavg").exists():
        return f"load average {os.getloadavg()[0]:.2f} (no /proc: other processes unknown)"
    before = _cpu_ticks()
    time.sleep(sample_seconds)
    after = _cpu_ticks()
    mine = _own_tree()
    hz = os.sysconf("SC_CLK_TCK")
    busy = defaultdict(float)
    for pid, (name, ticks) in after.items():
        if pid in mine or pid not in before:
            continue
        used = (ticks - before[pid][1]) / hz / sample_seconds * 100
        if used > 0:
            busy[name] += used
    top = sorted(busy.items(), key=lambda item: -item[1])[:4]
    others = sum(busy.values())
    one, five, fifteen = os.getloadavg()
    listed = ", ".join(f"{name} {pct:.0f}%" for name, pct in top) or "none"
    return (f"{os.cpu_count()} CPUs, load average {one:.2f} / {five:.2f} / {fifteen:.2f}; other processes used "
            f"{others:.0f}% of one CPU over {sample_seconds:.0f} s ({listed})")


# --- the interleaving harness ---------------------------------------------------------------------------------


def check_same(label: str, ours: tuple[list, int | None], baseline: tuple[list, int | None]) -> None:
    """The baseline must show what the page shows: the same row keys in the same order, and the same count of
    matches (None where neither counts). Stops the bench when they differ: a comparison of unequal work is
    worse than none."""
    (rows, count), (raw_rows, raw_count) = ours, baseline
    if list(rows) != list(raw_rows) or count != raw_count:
        first = next((i for i, (a, b) in enumerate(zip(rows, raw_rows, strict=False)) if a != b),
                     min(len(rows), len(raw_rows)))
        raise SystemExit(
            f"{label}: the raw-SQL baseline does not fetch what the page shows: {len(rows)} rows (count {count}) "
            f"against {len(raw_rows)} (count {raw_count}); first difference at row {first}: "
            f"{rows[first:first + 3]} vs {raw_rows[first:first + 3]}")


class Results:
    def __init__(self, sizes, names, rounds):
        self.sizes, self.names, self.rounds = list(sizes), list(names), rounds
        self.samples = defaultdict(list)   # (name, size, "ours" | "raw") -> every sample, ms
        self.medians = defaultdict(list)   # (name, size, kind) -> one median per round
        self.loads = []

    def median(self, name, size, kind="ours") -> float:
        return statistics.median(self.samples[(name, size, kind)])

    def ratio_rounds(self, name, size_a, size_b, kind="ours") -> list[float]:
        return [b / a for a, b in zip(self.medians[(name, size_a, kind)], self.medians[(name, size_b, kind)],
                                      strict=True) if a > 0]

    def print(self, title: str = "") -> None:
        small, large = self.sizes[0], self.sizes[-1]
        width = max(len(n) for n in self.names) + 2
        print(f"\n== {title}{' ' if title else ''}({self.rounds} rounds, sizes alternating; p50 [p10-p90] "
              "over every sample; ratios: median [min-max] of the per-round ratios)")
        print(f"{'':<{width}}{'size':>11}  {'ours ms':>25}  {'raw SQL ms':>25}  {'ours / raw':>18}")
        for name in self.names:
            for size in self.sizes:
                ours = self.samples[(name, size, "ours")]
                raw = self.samples[(name, size, "raw")]
                cell = f"{statistics.median(ours):7.2f} [{percentile(ours, .1):.2f}-{percentile(ours, .9):.2f}]"
                if raw:
                    raw_cell = f"{statistics.median(raw):7.2f} [{percentile(raw, .1):.2f}-{percentile(raw, .9):.2f}]"
                    per_round = [a / b for a, b in zip(self.medians[(name, size, "ours")],
                                                       self.medians[(name, size, "raw")], strict=True) if b > 0]
                    ratio = "x" + spread(per_round, ".1f")
                else:
                    raw_cell, ratio = "-", "-"
                label = name if size == small else ""
                print(f"{label:<{width}}{size:>11,}  {cell:>25}  {raw_cell:>25}  {ratio:>18}")
        if len(self.sizes) > 1:
            print(f"\n{'p50 at ' + f'{large:,} / p50 at {small:,}':<{width}}{'ours':>11}  {'raw SQL':>25}")
            for name in self.names:
                ours = "x" + spread(self.ratio_rounds(name, small, large))
                raw = self.ratio_rounds(name, small, large, "raw")
                print(f"{name:<{width}}{ours:>11}  {('x' + spread(raw)) if raw else '-':>25}")
        if self.loads:
            print(f"load average during the rounds: {min(self.loads):.2f}-{max(self.loads):.2f}")


def interleave(cases: dict, *, sizes, use, rounds: int, repeat: int) -> Results:
    """Time every case at every size in alternation.

    `cases`: name -> function(size) returning (ours, baseline) or (ours, baseline, before, after): callables of
    no argument; the baseline may be None; `before`/`after`, when given, run untimed around every sample (to
    put back the work a sample uses up). `use(size)` switches to a size's data. A first round warms everything
    and is discarded; then in each round the sizes come in turn, in an order that flips every round (A B, B A,
    A B...), so a drift of the machine (another process starting, the cache filling) falls on both; after each
    switch every callable runs once unrecorded; then `repeat` samples of each case alternate ours and
    baseline."""
    results = Results(sizes, cases, rounds)
    callables = {}
    for size in sizes:
        use(size)
        for name, make in cases.items():
            made = tuple(make(size))
            callables[(name, size)] = made + (None,) * (4 - len(made))

    def sample(fn, before, after) -> float:
        if before:
            before()
        took = timed(fn, 1)[0]
        if after:
            after()
        return took

    for r in range(-1, rounds):  # round -1: warm-up, discarded
        order = list(sizes) if r % 2 == 0 else list(reversed(sizes))
        for size in order:
            use(size)
            for name in cases:
                ours, raw, before, after = callables[(name, size)]
                for _ in range(2 if r < 0 else 1):
                    sample(ours, before, after)
                    if raw:
                        sample(raw, before, after)
            if r < 0:
                continue
            for name in cases:
                ours, raw, before, after = callables[(name, size)]
                a, b = [], []
                for _ in range(repeat):
                    a.append(sample(ours, before, after))
                    if raw:
                        b.append(sample(raw, before, after))
                results.samples[(name, size, "ours")] += a
                results.medians[(name, size, "ours")].append(statistics.median(a))
                if raw:
                    results.samples[(name, size, "raw")] += b
                    results.medians[(name, size, "raw")].append(statistics.median(b))
        if r >= 0:
            results.loads.append(os.getloadavg()[0])
    return results


# --- the HTTP server -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """gunicorn serving this checkout on 127.0.0.1 against `database_url`; a context manager that stops it."""

    def __init__(self, database_url: str, *, workers: int = 2, threads: int = 4, env=None, log=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "0", "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        self.argv = [str(BIN / "gunicorn"), "servicedesk.wsgi", "--bind", f"127.0.0.1:{self.port}",
                     "--workers", str(workers), "--threads", str(threads), "--log-level", "warning"]
        self.log = log
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=self.log or subprocess.DEVNULL,
                                     stderr=self.log or subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.proc.returncode} while starting")
            try:
                with urllib.request.urlopen(f"{self.base}/login/", timeout=2):  # noqa: S310 - loopback
                    return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise SystemExit("gunicorn did not answer within 60 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __exit__(self, *exc):
        self.stop()


def http_sign_in(base: str, username: str, password: str) -> str:
    """Sign in through the login form as a browser does (GET /login/ for the CSRF cookie and token, POST the
    form); returns the Cookie header of the signed-in session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/login/", timeout=30) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"username": username, "password": password,
                                   "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(f"{base}/login/", data=data, headers={"Referer": f"{base}/login/"})
    with opener.open(request, timeout=30) as response:
        response.read()
    cookies = {c.name: c.value for c in jar}
    if "sessionid" not in cookies:
        raise SystemExit(f"signing in as {username} at {base} gave no session")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


class HttpClient:
    """One kept-alive HTTP/1.1 connection with a session cookie: what a browser tab re-uses."""

    def __init__(self, base: str, cookie: str = "", headers=None):
        url = urlparse(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        self.headers = {"Cookie": cookie, **(headers or {})} if cookie else dict(headers or {})
        self.reconnects = 0

    def get(self, path: str) -> bytes:
        try:
            self.conn.request("GET", path, headers=self.headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # gunicorn closes a kept-alive connection idle for more than its keepalive (2 s): a browser
            # reconnects, and so do we (the connect is then part of this sample, as it is for the browser).
            self.reconnects += 1
            self.conn.close()
            self.conn.request("GET", path, headers=self.headers)
            response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path}: HTTP {response.status}")
        return body

    def close(self):
        self.conn.close()
