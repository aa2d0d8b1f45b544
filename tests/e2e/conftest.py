"""Browser tests: Debian's chromium driven by Playwright's sync API against pytest-django's live_server.

Run: DATABASE_URL=postgres://... .venv/bin/pytest tests/e2e
Screenshots of every key step land in test-artifacts/screenshots/ (git-ignored).
SD_SKIP_E2E=1 skips these tests where no chromium is installed; otherwise a missing browser fails.
"""

import os
import re
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM would refuse to run beside it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "Demo-pass-2026!"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("SD_SKIP_E2E") == "1":
            pytest.skip(f"{CHROMIUM} is missing and SD_SKIP_E2E=1")
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium. "
            "Install it with `apt-get install -y chromium`, or set SD_SKIP_E2E=1 to skip them.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# Every Content-Security-Policy violation is reported on the console, whatever chromium itself logs about it.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                " in " + e.sourceFile + ":" + e.lineNumber + " " + (e.sample || ""));
});
"""
# The one kind of console line a passing test may cause: the browser noting an HTTP error status the app gave
# on purpose (a 400 form, a 409 conflict, a 403/404 page). Everything else on the console fails the test.
EXPECTED_CONSOLE = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d ")


@pytest.fixture
def console_problems():
    """What the pages of this test said on their console (and every CSP violation), unexpected lines only.
    A test that provokes one on purpose reads it here and clears the list."""
    return []


@pytest.fixture
def new_page(browser, console_problems):
    """Open a fresh browser context (own cookies) and return its page; as many as a test needs.
    Any uncaught JavaScript error, any console message and any CSP violation on any page fails the test."""
    contexts = []
    js_errors = []

    def on_console(message):
        if not EXPECTED_CONSOLE.match(message.text):
            where = message.page.url if message.page else message.location.get("url", "")
            console_problems.append(f"{message.type}: {message.text} (on {where})")

    def open_page(*, javascript: bool = True):
        context = browser.new_context(
            viewport={"width": 1366, "height": 900}, locale="en-GB", java_script_enabled=javascript
        )
        context.set_default_timeout(10_000)
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        context.on("console", on_console)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: js_errors.append(f"{page.url}: {error}"))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not js_errors, f"JavaScript errors: {js_errors}"
    assert not console_problems, "Console messages or CSP violations:\n" + "\n".join(console_problems)


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture(autouse=True)
def eager_tasks():
    """Run Celery tasks in the calling thread (the live server's), so emails land in mailoutbox
    and nothing is left queued on the broker."""
    from servicedesk.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot of the current page as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page, live_server, username: str, password: str = PASSWORD):
    """Sign in through the login form; returns the page on whatever home the user lands on."""
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("domcontentloaded")
    return page


def provision_user(username: str, role: str, **extra):
    from servicedesk.services import user_provision

    first, _, last = extra.pop("name", username.capitalize()).partition(" ")
    defaults = {
        "password": PASSWORD,
        "email": f"{username}@example.com",
        "first_name": first,
        "last_name": last,
        "organisation": "Acme",
    }
    if role != "requester":
        defaults["teams"] = ["Service Desk"]
    defaults.update(extra)
    user, _ = user_provision(username=username, role=role, **defaults)
    return user
