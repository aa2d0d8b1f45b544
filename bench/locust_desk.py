"""A day at the desk, for locust (FastHttpUser: a light load generator): agents working queues and tickets,
portal users, and a monitoring system posting events.

Started by bench/bench_load.py, which prepares the database, signs the simulated people in, starts the
servers and writes SD_LOAD_PEOPLE (a JSON file: each agent's and portal user's session and CSRF cookies, the
event source's token, the catalog items a portal user can order with no answer required). It can also be run
by hand against a server bench_load.py prepared:
    locust -f bench/locust_desk.py --headless -u 270 -r 30 -t 2m --host http://127.0.0.1:8000

- Agents (SD_LOAD_AGENTS, default 200): open a queue (theirs, their teams', unassigned or all open), open one of
  its incidents, and work it: comment, assign it to themselves, resolve it (and, as callers do, some resolved
  ones come back: reopened, so the open work does not run dry during the run). Between clicks an agent reads
  and types: SD_LOAD_AGENT_WAIT seconds (default "5-20", uniform).
- Portal users (SD_LOAD_PORTAL, default 50): portal home (with their tickets), search the knowledge base,
  raise a request (report an issue, or order a catalog item), open one of their tickets.
- Events: SD_LOAD_EVENTS_PER_S (default 100) events a second to POST /api/v1/events/ with the event source's
  token, in batches of SD_LOAD_EVENT_BATCH (default 5): firing and resolved alerts over a pool of alert ids,
  so most fold into open alerts; a few are critical and open incidents.

A 409 (someone else changed the ticket first) is what two agents on one ticket get; it is counted under its
own name ("... (conflict)"), not as an error. Every other non-2xx/3xx answer is an error.
"""

import itertools
import json
import os
import random
import re
from datetime import UTC, datetime
from http.cookiejar import Cookie

from locust import FastHttpUser, between, constant_throughput, task

PEOPLE = json.loads(open(os.environ["SD_LOAD_PEOPLE"]).read()) if os.environ.get("SD_LOAD_PEOPLE") else {
    "agents": [], "portal": [], "event_token": "", "catalog_items": [], "services": [], "service_names": []}
AGENTS = int(os.environ.get("SD_LOAD_AGENTS", "200"))
PORTAL = int(os.environ.get("SD_LOAD_PORTAL", "50"))
EVENTS_PER_S = float(os.environ.get("SD_LOAD_EVENTS_PER_S", "100"))
EVENT_BATCH = int(os.environ.get("SD_LOAD_EVENT_BATCH", "5"))
EVENT_SENDERS = max(1, round(EVENTS_PER_S / EVENT_BATCH / 2))  # each sender posts twice a second
AGENT_WAIT = [float(x) for x in os.environ.get("SD_LOAD_AGENT_WAIT", "5-20").split("-")]

_agent_seats = itertools.count()
_portal_seats = itertools.count()
_sender_seats = itertools.count()
INCIDENT_LINK = re.compile(r'href="/agent/incidents/(INC\d+)/"')
PORTAL_LINK = re.compile(r'href="/portal/(?:incidents|requests)/((?:INC|REQ)\d+)/"')
VERSION = re.compile(r'name="version" value="(\d+)"')
WORDS = ["vpn", "password", "printer", "laptop", "outlook", "wifi", "teams", "badge", "monitor", "reset"]


def _cookie(name: str, value: str, host: str) -> Cookie:
    return Cookie(0, name, value, None, False, host, False, False, "/", True, False, None, True, None, None, {})


class Person(FastHttpUser):
    abstract = True
    pool: list = []
    seats = None

    def on_start(self):
        if not self.pool:
            raise RuntimeError("SD_LOAD_PEOPLE names nobody: start this through bench/bench_load.py")
        self.me = self.pool[next(self.seats) % len(self.pool)]
        host = self.host.split("://", 1)[1].split(":")[0]
        self.client.cookiejar.set_cookie(_cookie("sessionid", self.me["session"], host))
        self.client.cookiejar.set_cookie(_cookie("csrftoken", self.me["csrf"], host))
        self.post_headers = {"X-CSRFToken": self.me["csrf"], "Referer": self.host + "/"}

    def post(self, path: str, data: dict, name: str):
        """A form POST as the browser sends it; a 409 (another agent moved the ticket first) is not an error."""
        with self.client.post(path, data=data, headers=self.post_headers, name=name, catch_response=True,
                              allow_redirects=False) as response:
            if response.status_code == 409:
                response.request_meta["name"] = f"{name} (conflict)"
                response.success()
            elif response.status_code in (200, 302, 303):
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:200] if response.text else ''}")
            return response


class Agent(Person):
    fixed_count = AGENTS
    wait_time = between(*AGENT_WAIT)
    pool = PEOPLE["agents"]
    seats = _agent_seats

    def open_ticket(self, queue: str):
        page = self.client.get(f"/agent/queue/{queue}/", name=f"/agent/queue/{queue}/")
        numbers = INCIDENT_LINK.findall(page.text or "")
        if not numbers:
            return None, None
        number = random.choice(numbers[:50])
        ticket = self.client.get(f"/agent/incidents/{number}/", name="/agent/incidents/[number]/")
        found = VERSION.search(ticket.text or "")
        return number, (found.group(1) if found else None)

    def version_of(self, number: str):
        ticket = self.client.get(f"/agent/incidents/{number}/", name="/agent/incidents/[number]/")
        found = VERSION.search(ticket.text or "")
        return found.group(1) if found else None

    @task(4)
    def look(self):
        self.client.get("/agent/", name="/agent/ (dashboard)")
        self.wait()
        self.open_ticket(random.choice(["mine", "team", "all", "unassigned"]))

    @task(3)
    def work_a_ticket(self):
        number, version = self.open_ticket(random.choice(["unassigned", "team", "all"]))
        if not number or not version:
            return
        self.wait()
        self.post(f"/agent/incidents/{number}/comment/", {"body": "Looking into it (load test)."},
                  "/agent/incidents/[number]/comment/")
        self.wait()
        version = self.version_of(number)
        if version is None:
            return
        self.post(f"/agent/incidents/{number}/edit/", {"field": "assignee", "value": self.me["username"],
                                                         "version": version}, "/agent/incidents/[number]/edit/ (assign)")
        self.wait()
        version = self.version_of(number)
        if version is None:
            return
        done = self.post(f"/agent/incidents/{number}/transition/", {
            "to": "resolved", "version": version, "resolution_code": "fixed",
            "resolution_notes": "Fixed during the load test."}, "/agent/incidents/[number]/transition/ (resolve)")
        if done.status_code in (302, 303) and random.random() < 0.8:
            # The caller says it is not fixed: reopened, so the open work stays about the same all run long.
            version = self.version_of(number)
            if version:
                self.post(f"/agent/incidents/{number}/transition/", {
                    "to": "in_progress", "version": version, "reason": "Caller says it still happens."},
                    "/agent/incidents/[number]/transition/ (reopen)")


class PortalUser(Person):
    fixed_count = PORTAL
    wait_time = between(5, 20)
    pool = PEOPLE["portal"]
    seats = _portal_seats

    @task(3)
    def home_and_my_tickets(self):
        home = self.client.get("/portal/", name="/portal/ (home, my tickets)")
        numbers = PORTAL_LINK.findall(home.text or "")
        if numbers:
            self.wait()
            number = random.choice(numbers)
            kind = "incidents" if number.startswith("INC") else "requests"
            self.client.get(f"/portal/{kind}/{number}/", name=f"/portal/{kind}/[number]/")

    @task(3)
    def search_kb(self):
        self.client.get("/portal/search/", params={"q": " ".join(random.sample(WORDS, random.randint(1, 2)))},
                        headers={"HX-Request": "true"}, name="/portal/search/?q=")

    @task(1)
    def raise_request(self):
        if PEOPLE["catalog_items"] and random.random() < 0.5:
            item = random.choice(PEOPLE["catalog_items"])
            self.client.get(f"/portal/catalog/{item}/", name="/portal/catalog/[item]/")
            self.wait()
            self.post(f"/portal/catalog/{item}/", {}, "/portal/catalog/[item]/ (order)")
        else:
            self.client.get("/portal/report/", name="/portal/report/")
            self.wait()
            self.post("/portal/report/", {
                "title": f"{random.choice(WORDS).capitalize()} does not work (load test)",
                "description": "Since this morning.", "urgency": random.choice([2, 3]),
                "service": random.choice(PEOPLE["services"]) if PEOPLE["services"] else ""},
                "/portal/report/ (raise)")


class EventSender(FastHttpUser):
    """A monitoring system: EVENT_BATCH events a POST, two POSTs a second per sender."""

    fixed_count = EVENT_SENDERS
    wait_time = constant_throughput(2)
    seats = _sender_seats

    def on_start(self):
        self.n = next(self.seats)
        self.headers = {"Authorization": f"Token {PEOPLE['event_token']}", "Content-Type": "application/json"}

    @task
    def post_events(self):
        now = datetime.now(UTC).isoformat()
        events = []
        # A pool of alert ids: most events repeat or clear an open alert; one event per alert in a batch (the
        # endpoint refuses a batch that holds the same event twice).
        for alert in random.sample(range(300), EVENT_BATCH):
            roll = random.random()
            events.append({
                "source_id": f"load-{self.n}-{alert}", "status": "resolved" if roll < 0.3 else "firing",
                "severity": "critical" if roll > 0.995 else random.choice(["warning", "minor", "info"]),
                "summary": f"load test alert {alert}", "service": random.choice(PEOPLE["service_names"] or [""]),
                "labels": {"host": f"host-{alert % 40}"}, "occurred_at": now})
        with self.client.post("/api/v1/events/", data=json.dumps({"events": events}), headers=self.headers,
                              name="/api/v1/events/ (batch)", catch_response=True) as response:
            if response.status_code != 202:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
