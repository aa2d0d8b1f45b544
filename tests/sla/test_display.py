"""How clocks read to people: remaining business time in words, tones, and which clock a queue row shows.
No database: clocks that do not run need no calendar."""

from datetime import UTC, datetime, timedelta

import pytest

from sla.display import ClockView, duration_words, most_urgent, remaining_words
from sla.models import SlaClock

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("seconds, words", [
    (0, "< 1 min"), (59, "< 1 min"), (60, "1 min"), (35 * 60 + 59, "35 min"), (3599, "59 min"), (3600, "1 h"),
    (2 * 3600 + 10 * 60, "2 h 10 min"), (2 * 3600 + 10 * 60 + 59, "2 h 10 min"), (23 * 3600 + 59 * 60, "23 h 59 min"),
    (26 * 3600 + 5 * 60, "26 h"), (80 * 3600, "80 h"), (-35 * 60, "35 min"), (-(3 * 3600 + 60), "3 h 1 min"),
])
def test_it_writes_business_time_in_whole_minutes_counted_down(seconds, words):
    assert duration_words(seconds) == words


@pytest.mark.parametrize("state, remaining, words, left", [
    ("running", 2 * 3600 + 600, "2 h 10 min", "2 h 10 min left"),
    ("running", 30, "< 1 min", "< 1 min left"),
    ("running", -35 * 60, "late 35 min", "late 35 min"),
    ("running", -1, "late < 1 min", "late < 1 min"),
    ("paused", 3 * 3600, "paused · 3 h left", "paused · 3 h left"),
    ("paused", -20 * 60, "paused · late 20 min", "paused · late 20 min"),
    ("met", 600, "met", "met"),
    ("breached", -600, "breached", "breached"),
    ("cancelled", 600, "cancelled", "cancelled"),
])
def test_it_says_what_is_left_of_a_clock_in_each_state(state, remaining, words, left):
    assert remaining_words(state, remaining) == words
    assert remaining_words(state, remaining, left=True) == left


def clock(kind="resolution", state="paused", elapsed=0.0, target=3600, **extra) -> SlaClock:
    extra.setdefault("segments", [])
    return SlaClock(ticket_type="incident", ticket_id=1, kind=kind, state=state, elapsed_seconds=elapsed,
                    target_seconds=target, started_at=NOW - timedelta(hours=1), priority=3, warning_percent=75,
                    **extra)


def test_a_paused_clock_keeps_the_remainder_it_had_when_it_paused():
    view = ClockView(clock(elapsed=1500, target=3600), NOW)
    assert (view.remaining_seconds, view.due_at, view.tone, view.words) == (2100, None, "paused", "paused · 35 min left")
    later = ClockView(view.clock, NOW + timedelta(days=3))
    assert later.remaining_seconds == 2100  # frozen: nothing counts while paused


@pytest.mark.parametrize("extra, tone", [
    ({"state": "paused", "elapsed": 100}, "paused"),
    ({"state": "paused", "elapsed": 4000}, "breached"),  # paused, but already past its target
    ({"state": "paused", "elapsed": 100, "breached_at": NOW}, "breached"),
    ({"state": "met", "elapsed": 100}, "met"),
    ({"state": "breached", "elapsed": 4000}, "breached"),
    ({"state": "cancelled", "elapsed": 100}, "cancelled"),
])
def test_its_tone_follows_state_and_lateness(extra, tone):
    extra = dict(extra)
    view = ClockView(clock(state=extra.pop("state"), elapsed=extra.pop("elapsed"), **extra), NOW)
    assert view.tone == tone


def test_the_segments_explain_the_pause_with_its_reason_and_business_seconds():
    segments = [
        {"state": "running", "from": "2026-11-23T09:00:00+00:00", "to": "2026-11-23T10:00:00+00:00", "seconds": 3600,
         "reason": "Incident raised"},
        {"state": "paused", "from": "2026-11-23T10:00:00+00:00", "to": "2026-11-23T11:30:00+00:00", "seconds": 5400,
         "reason": "On hold (awaiting caller)", "ended_by": ""},
    ]
    view = ClockView(clock(state="met", elapsed=3600, target=7200, segments=segments,
                           stopped_at=NOW - timedelta(minutes=30)), NOW)
    assert [(s.state, s.words, s.reason) for s in view.segments] == [
        ("running", "1 h", "Incident raised"), ("paused", "1 h 30 min", "On hold (awaiting caller)")]
    assert view.paused_words == "1 h 30 min"
    assert (view.elapsed_words, view.target_words, view.progress) == ("1 h", "2 h", 50)


def test_a_row_shows_the_paused_clock_with_least_left_and_never_an_ola():
    first = ClockView(clock(kind="first_response", elapsed=1000, target=1800), NOW)
    resolution = ClockView(clock(kind="resolution", elapsed=1000, target=14400), NOW)
    ola = ClockView(clock(kind="ola", elapsed=1000, target=1200), NOW)
    assert most_urgent([first, resolution, ola]) is first
    assert most_urgent([ola]) is None
    assert most_urgent([]) is None


def test_a_row_of_a_closed_ticket_shows_how_its_resolution_clock_ended():
    first = ClockView(clock(kind="first_response", state="met"), NOW)
    resolution = ClockView(clock(kind="resolution", state="breached", elapsed=5000), NOW)
    assert most_urgent([first, resolution]) is resolution
    assert most_urgent([first]) is first
