"""monitoring.kpis against hand-computed figures: events and alerts with known times, created through the ORM
(read-side tests). The moment `now` is fixed, so every bucket and mean below is worked out by hand."""

from datetime import UTC, datetime

import pytest

from monitoring import kpis
from monitoring.models import Alert

from .console_data import make_alert, make_event, make_source

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)


def at(hh, mm, ss=0, day=10):
    return datetime(2026, 3, day, hh, mm, ss, tzinfo=UTC)


@pytest.fixture
def history(incident_factory, agent):
    """Events: three in the minute 11:30, one at 11:59:10, one at 12:00:10 (in the last hour), two at 10:50
    (before it). Alerts first seen in the last hour: a1 and a2 on one incident, a3 on none; a4 older."""
    source = make_source()
    incident = incident_factory(title="Checkout down")
    a1 = make_alert(source, "Checkout 5xx", severity="critical", first_seen=at(11, 30, 5), incident=incident,
                    status=Alert.Status.RESOLVED, acknowledged_at=at(11, 34, 5), acknowledged_by=agent,
                    cleared_at=at(11, 50, 5))
    a2 = make_alert(source, "Checkout latency", severity="critical", first_seen=at(11, 40), incident=incident,
                    acknowledged_at=at(11, 50), acknowledged_by=agent)
    a3 = make_alert(source, "Disk 85% on web1", severity="warning", first_seen=at(11, 50),
                    status=Alert.Status.RESOLVED, cleared_at=at(11, 56))
    make_alert(source, "Queue backlog", severity="major", first_seen=at(10, 0), flapping=True)
    make_alert(source, "Cert expires in 20 days", severity="minor", first_seen=at(9, 0))
    make_alert(source, "Long gone", severity="critical", first_seen=at(8, 0), status=Alert.Status.RESOLVED,
               live=False)
    for moment in (at(11, 30, 5), at(11, 30, 40), at(11, 30, 59)):
        make_event(source, alert=a1, received_at=moment)
    make_event(source, alert=a2, received_at=at(11, 59, 10))
    make_event(source, alert=a3, received_at=at(12, 0, 10))
    make_event(source, received_at=at(10, 50))
    make_event(source, received_at=at(10, 50, 30))
    return {"incident": incident}


def test_events_per_minute_over_the_last_hour_fills_every_minute(history, django_assert_num_queries):
    with django_assert_num_queries(1):
        data = kpis.events_per_minute(kpis.PERIODS["1h"], now=NOW)
    points = data["points"]
    assert len(points) == 61  # 11:00 .. 12:00, the minutes holding now - 1 h and now
    assert points[0]["at"] == at(11, 0) and points[-1]["at"] == at(12, 0)
    by_minute = {p["at"]: p["events"] for p in points if p["events"]}
    assert by_minute == {at(11, 30): 3, at(11, 59): 1, at(12, 0): 1}
    assert data["total"] == 5
    assert data["mean_per_minute"] == round(5 / 60.5, 2)  # 11:00:00 .. 12:00:30
    assert data["peak"]["at"] == at(11, 30) and data["peak"]["per_minute"] == 3


def test_events_per_minute_over_a_day_is_a_rate_per_hour_bucket(history):
    data = kpis.events_per_minute(kpis.PERIODS["24h"], now=NOW)
    assert len(data["points"]) == 25
    rows = {p["at"]: (p["events"], p["per_minute"]) for p in data["points"] if p["events"]}
    assert rows == {at(10, 0): (2, round(2 / 60, 2)), at(11, 0): (4, round(4 / 60, 2)), at(12, 0): (1, 0.02)}


def test_day_buckets_follow_the_local_calendar(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    source = make_source()
    make_event(source, received_at=datetime(2026, 3, 9, 23, 30, tzinfo=UTC))  # 10 March 00:30 in Berlin
    make_event(source, received_at=datetime(2026, 3, 9, 22, 30, tzinfo=UTC))  # 9 March 23:30 in Berlin
    data = kpis.events_per_minute(kpis.PERIODS["30d"], now=NOW)
    assert len(data["points"]) == 31
    days = {p["at"].date().isoformat(): p["events"] for p in data["points"] if p["events"]}
    assert days == {"2026-03-09": 1, "2026-03-10": 1}
    assert [p for p in data["points"] if p["events"]][0]["per_minute"] == round(1 / 1440, 2)


def test_open_alerts_count_live_firing_ones_by_severity_in_one_query(history, django_assert_num_queries):
    with django_assert_num_queries(1):
        data = kpis.open_alerts()
    assert data["total"] == 3  # a2, the queue backlog, the certificate
    assert data["unacknowledged"] == 2 and data["flapping"] == 1
    assert {row["severity"]: row["count"] for row in data["by_severity"]} == {
        "critical": 1, "major": 1, "minor": 1, "warning": 0, "info": 0}
    assert [row["severity"] for row in data["by_severity"]] == ["critical", "major", "minor", "warning", "info"]


def test_noise_reduction_counts_events_alerts_and_their_incidents(history, django_assert_num_queries):
    with django_assert_num_queries(2):
        data = kpis.noise(kpis.PERIODS["1h"], now=NOW)
    assert (data["events"], data["alerts"], data["incidents"]) == (5, 3, 1)
    assert data["exceptions"] == 2
    assert data["events_per_incident"] == 5.0 and data["alerts_per_incident"] == 3.0
    assert data["events_per_alert"] == 1.7
    assert data["reduction_percent"] == 80.0


def test_noise_of_an_empty_period_has_no_ratios():
    data = kpis.noise(kpis.PERIODS["1h"], now=NOW)
    assert data["events"] == 0 and data["events_per_incident"] is None and data["reduction_percent"] is None


def test_mean_times_to_acknowledge_and_resolve(history, django_assert_num_queries):
    with django_assert_num_queries(2):
        data = kpis.response_times(kpis.PERIODS["1h"], now=NOW)
    overall = data["overall"]
    # MTTA: a1 4 min, a2 10 min -> 7. MTTR: a1 20 min, a3 6 min -> 13.
    assert (overall["mtta_minutes"], overall["mttr_minutes"]) == (7.0, 13.0)
    assert (overall["alerts"], overall["acknowledged"], overall["cleared"]) == (3, 2, 2)
    assert overall["mtta"] == "7.0 min" and overall["mttr"] == "13.0 min"
    by = {row["severity"]: row for row in data["by_severity"]}
    assert (by["critical"]["mtta_minutes"], by["critical"]["mttr_minutes"]) == (7.0, 20.0)
    assert (by["warning"]["mtta_minutes"], by["warning"]["mttr_minutes"]) == (None, 6.0)
    assert by["info"]["alerts"] == 0 and by["info"]["mtta"] == ""


def test_a_longer_period_takes_in_the_older_alerts(history):
    data = kpis.response_times(kpis.PERIODS["24h"], now=NOW)
    assert data["overall"]["alerts"] == 6


def test_periods_are_named_and_spelled():
    assert kpis.period_of(None).key == "24h" and kpis.period_of("7d").bucket == "hour"
    with pytest.raises(ValueError, match="period: choose one of 1h, 24h, 7d, 30d"):
        kpis.period_of("1y")
    assert [kpis.spell(m) for m in (None, 12.5, 150, 4320)] == ["", "12.5 min", "2.5 h", "3.0 days"]
