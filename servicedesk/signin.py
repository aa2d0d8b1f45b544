"""Sign-in that cannot be guessed at: the rules django-axes applies, and the "try again after" answer.

django-axes records each failed sign-in in its AccessAttempt table (one row per username, address and
user agent: a failure count and the time of the last failure), in the database every web process
shares, and its authentication backend refuses a locked-out sign-in before any password is checked.
This module supplies the project's rules through axes' extension points (settings.AXES_*):

- a username is locked after LOGIN_FAILURE_LIMIT failures within LOGIN_COOLOFF_MINUTES, whatever
  addresses they came from (`lockout_parameters` names only the username); every spelling of a username
  shares one count (`username_key`: spaces stripped, case folded), since a directory sign-in accepts "Ann",
  "ANN" and "ann" for one account. Local accounts whose usernames differ only by case share it too;
- an address is locked only while it has failed for LOGIN_ADDRESS_USERNAME_LIMIT different usernames
  within the cool-off (credential stuffing): `lockout_parameters` then adds the address, so axes counts
  every failure from it. One person's typos never lock their colleagues behind the same NAT address;
- the client address is REMOTE_ADDR unless TRUSTED_PROXY_COUNT says how many reverse proxies append to
  X-Forwarded-For (`client_address`), so a client cannot choose its address by sending that header;
- a refused sign-in gets a page (or, under /api/, a JSON 429) saying when to try again, with Retry-After.

Admins unlock in admin (Axes > Access attempts: delete the rows) or with `manage.py axes_reset_username`.
"""

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.utils import dateformat, timezone
from django.utils.timesince import timeuntil

USERNAME = "username"
ADDRESS = "address"


def client_address(request) -> str | None:
    """The address sign-in failures are counted against (settings.AXES_CLIENT_IP_CALLABLE).

    REMOTE_ADDR, unless TRUSTED_PROXY_COUNT = N > 0 reverse proxies each append the address they saw to
    X-Forwarded-For: then the N-th entry from the right, the one the outermost trusted proxy wrote.
    Anything left of it was sent by the client and is ignored.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.TRUSTED_PROXY_COUNT
    if count:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= count:
            try:
                return str(ipaddress.ip_address(hops[-count]))
            except ValueError:
                pass
    return remote


def username_key(request, credentials=None) -> str | None:
    """settings.AXES_USERNAME_CALLABLE: the username failures are counted and locked by.

    Stripped and case-folded, so "Ann", " ann" and "ANN" are one counter: the directory (LDAP) signs all of
    them in to the same account, and a lockout per spelling would give a guesser five tries per spelling.
    Two local accounts whose usernames differ only by case (Django allows it) therefore share one count,
    and guesses at one lock both: the safe side of that choice. Otherwise as axes reads it: `credentials`,
    else the posted form."""
    if credentials:
        raw = credentials.get("username")
    else:
        raw = getattr(request, "data", request.POST).get("username") if request is not None else None
    return raw.strip().casefold() if isinstance(raw, str) else raw


def _address_of(request_or_attempt) -> str | None:
    if isinstance(request_or_attempt, AccessAttempt):
        return request_or_attempt.ip_address
    address = getattr(request_or_attempt, "axes_ip_address", None)
    return address if address is not None else client_address(request_or_attempt)


def _since(request_or_attempt) -> datetime:
    now = getattr(request_or_attempt, "axes_attempt_time", None) or timezone.now()
    return now - get_cool_off(request_or_attempt if isinstance(request_or_attempt, HttpRequest) else None)


def address_is_stuffing(address: str | None, since: datetime) -> bool:
    """Has this address failed to sign in as many different usernames since then?"""
    if not address:
        return False
    usernames = (
        AccessAttempt.objects.filter(ip_address=address, attempt_time__gte=since)
        .order_by().values("username").distinct().count()
    )
    return usernames >= settings.LOGIN_ADDRESS_USERNAME_LIMIT


def lockout_parameters(request_or_attempt, credentials=None) -> list:
    """settings.AXES_LOCKOUT_PARAMETERS: what axes counts failures by for this sign-in."""
    if address_is_stuffing(_address_of(request_or_attempt), _since(request_or_attempt)):
        return ["username", "ip_address"]
    return ["username"]


class LockoutBackend(AxesStandaloneBackend):
    """Axes' backend: refuses a locked-out username or address before ModelBackend checks a password.

    Django's test client and scripts call authenticate() without a request; axes would raise. Such a
    call is still refused for a locked username (that needs no address), it just has no address to count.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        return super().authenticate(request if request is not None else HttpRequest(), username, password,
                                    **kwargs)


@dataclass(frozen=True)
class Lockout:
    reason: str  # USERNAME or ADDRESS
    ends_at: datetime

    def seconds_left(self, now: datetime | None = None) -> int:
        return max(1, math.ceil((self.ends_at - (now or timezone.now())).total_seconds()))

    def message(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        whom = "this username" if self.reason == USERNAME else "your network address"
        ends, today = timezone.localtime(self.ends_at), timezone.localtime(now).date()
        at = dateformat.format(ends, "H:i T" if ends.date() == today else "j M Y H:i T")
        # Rounded up to the minute, with plain spaces (timeuntil uses non-breaking ones).
        wait = timeuntil(self.ends_at + timedelta(seconds=59), now).replace("\xa0", " ")
        return f"Too many failed sign-in attempts for {whom}. Try again after {at} (in {wait})."


def lockout_of(request, credentials=None) -> Lockout | None:
    """Why this sign-in is refused and when it can be tried again; None when nothing is locked.

    Mirrors axes' count: failures whose row was last touched within the cool-off. A row's failures all
    lapse together, cool-off after its last failure, so the lock ends when enough of the oldest rows
    have lapsed to bring the count under the limit.
    """
    now = getattr(request, "axes_attempt_time", None) or timezone.now()
    cool_off = get_cool_off(request)
    recent = AccessAttempt.objects.filter(attempt_time__gte=now - cool_off).order_by()
    found = []
    username = get_client_username(request, credentials)
    if username is not None:
        rows = list(recent.filter(username=username).order_by("attempt_time")
                    .values_list("attempt_time", "failures_since_start"))
        remaining, limit, ends = sum(failures for _, failures in rows), get_failure_limit(request, credentials), None
        for attempt_time, failures in rows:
            if remaining < limit:
                break
            remaining, ends = remaining - failures, attempt_time + cool_off
        if ends is not None:
            found.append(Lockout(USERNAME, ends))
    address = _address_of(request)
    if address:
        lasts = sorted(recent.filter(ip_address=address).values("username")
                       .annotate(last=Max("attempt_time")).values_list("last", flat=True))
        # Locked while LOGIN_ADDRESS_USERNAME_LIMIT or more names failed: it ends when the oldest
        # (count - limit + 1) names have lapsed.
        over = len(lasts) - settings.LOGIN_ADDRESS_USERNAME_LIMIT
        if over >= 0:
            found.append(Lockout(ADDRESS, lasts[over] + cool_off))
    return max(found, key=lambda lockout: lockout.ends_at, default=None)


def refused_lockout(request, credentials=None) -> Lockout:
    """The lockout behind a sign-in axes has just refused (a full cool-off should the rows be gone)."""
    return lockout_of(request, credentials) or Lockout(USERNAME, timezone.now() + get_cool_off(request))


def lockout_response(request, original_response=None, credentials=None):
    """settings.AXES_LOCKOUT_CALLABLE: the answer to a sign-in that axes refused.

    The login form and admin login get a page saying when to try again; /api/ gets a JSON 429 with
    `detail` and Retry-After. The API token view answers its own lockout (a 429 with Retry-After): keep it.
    """
    is_api = request.path.startswith("/api/")
    if is_api and original_response is not None and original_response.status_code == 429 \
            and original_response.has_header("Retry-After"):
        return original_response
    now = timezone.now()
    lockout = refused_lockout(request, credentials)
    if is_api:
        response = JsonResponse({"detail": lockout.message(now)}, status=settings.AXES_HTTP_RESPONSE_CODE)
    else:
        response = render(request, "registration/locked_out.html",
                          {"lockout": lockout, "message": lockout.message(now),
                           "username": get_client_username(request, credentials) or ""},
                          status=settings.AXES_HTTP_RESPONSE_CODE)
    response["Retry-After"] = str(lockout.seconds_left(now))
    return response
