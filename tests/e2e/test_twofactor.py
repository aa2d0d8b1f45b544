"""Two-factor sign-in in the browser: set it up from the profile, sign out, sign in with the phone's code; and
the set-up forced at sign-in by the policy. Codes come from pyotp with the key the page shows, as a phone's."""

import re
import time

import pyotp
import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def code_at(phone: pyotp.TOTP, steps: int = 0) -> str:
    if 30 - time.time() % 30 < 3:  # not in a step's last seconds: the server judges it a moment later
        time.sleep(30 - time.time() % 30 + 0.05)
    return phone.at(time.time() + steps * 30)


def read_phone(page) -> pyotp.TOTP:
    expect(page.get_by_test_id("totp-qr")).to_be_visible()
    natural = page.get_by_test_id("totp-qr").evaluate("img => img.naturalWidth")
    assert natural > 0  # the QR code's SVG loaded under the Content-Security-Policy
    return pyotp.TOTP(page.get_by_test_id("totp-secret").inner_text().replace(" ", ""))


def test_an_agent_sets_up_two_factor_then_signs_in_with_a_code(new_page, live_server):
    provision_user("agnes", "agent", name="Agnes Agent")
    page = login(new_page(), live_server, "agnes")
    expect(page).to_have_url(re.compile(r"/agent/"))
    page.goto(f"{live_server.url}/profile/")
    expect(page.get_by_test_id("profile-twofactor")).to_contain_text("Off")
    screenshot(page, "twofactor-00-profile")
    page.get_by_test_id("twofactor-link").click()
    expect(page.get_by_test_id("twofactor-off")).to_be_visible()
    page.get_by_test_id("twofactor-setup").click()
    phone = read_phone(page)
    screenshot(page, "twofactor-01-enrol")

    page.get_by_label("Code from the app").fill("000000" if phone.now() != "000000" else "111111")
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_test_id("code-error")).to_contain_text("not the one the app shows now")
    page.get_by_label("Code from the app").fill(code_at(phone, -1))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    codes = page.get_by_test_id("backup-codes").locator("code").all_inner_texts()
    assert len(codes) == 10
    screenshot(page, "twofactor-02-backup-codes")
    page.get_by_test_id("codes-done").click()
    expect(page.get_by_test_id("twofactor-on")).to_be_visible()
    expect(page.get_by_test_id("backup-left")).to_have_text("10")
    screenshot(page, "twofactor-03-manage")

    page.get_by_role("button", name="Log out").click()
    page = login(page, live_server, "agnes")
    expect(page).to_have_url(f"{live_server.url}/login/code/")
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    screenshot(page, "twofactor-04-code-step")
    # Half signed in: the workspace is not reachable.
    page.goto(f"{live_server.url}/agent/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/agent/"))

    page.goto(f"{live_server.url}/login/code/")
    page.get_by_label("Code").fill("123456" if phone.now() != "123456" else "654321")
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page.get_by_test_id("code-error")).to_contain_text("That code is not right")
    screenshot(page, "twofactor-05-wrong-code")
    page.get_by_label("Code").fill(code_at(phone))
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page).to_have_url(re.compile(r"/agent/"))
    expect(page.get_by_role("button", name="Log out")).to_be_attached()


def test_a_required_admin_sets_it_up_at_sign_in_before_reaching_admin(new_page, live_server):
    from servicedesk.models import SignInPolicy

    provision_user("root", "admin", name="Ada Admin")
    SignInPolicy.objects.create(require_admins=True)
    page = new_page()
    page.goto(f"{live_server.url}/admin/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("Demo-pass-2026!")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/login/enrol/")
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    phone = read_phone(page)
    screenshot(page, "twofactor-06-enrol-required")
    page.get_by_label("Code from the app").fill(code_at(phone))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    page.get_by_test_id("codes-done").click()
    expect(page).to_have_url(f"{live_server.url}/admin/")
    expect(page.get_by_role("heading", name="Configuration")).to_be_visible()


def test_setting_it_up_long_after_signing_in_asks_for_the_password_first(new_page, live_server):
    from importlib import import_module

    from django.conf import settings
    from django.contrib.sessions.models import Session

    from servicedesk import twofactor

    provision_user("agnes", "agent", name="Agnes Agent")
    page = login(new_page(), live_server, "agnes")
    expect(page).to_have_url(re.compile(r"/agent/"))
    # The sign-in was long ago (the session is edited as time would have left it).
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)  # as the server reads it
    store[twofactor.PROVED_AT] -= 3600
    store.save()
    assert Session.objects.filter(session_key=key).exists()
    page.goto(f"{live_server.url}/profile/two-factor/enrol/")
    expect(page.get_by_test_id("password-step")).to_be_visible()
    expect(page.get_by_test_id("totp-secret")).to_have_count(0)
    page.get_by_label("Your password").fill("not-my-password")
    page.get_by_role("button", name="Go on").click()
    expect(page.get_by_test_id("password-error")).to_have_text("That is not your password.")
    screenshot(page, "twofactor-07-password-again")
    page.get_by_label("Your password").fill("Demo-pass-2026!")
    page.get_by_role("button", name="Go on").click()
    read_phone(page)
