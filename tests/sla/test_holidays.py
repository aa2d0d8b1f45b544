"""Public holidays come from the `holidays` package for a country, subdivision and range of years."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from servicedesk.models import AuditLog
from sla.models import Holiday
from sla.services import holidays_import

pytestmark = pytest.mark.django_db


def test_it_imports_england_holidays_for_two_years(office, admin_user):
    done = holidays_import(calendar_id=office.id, country="gb", subdivision="eng", year_from=2026, year_to=2027,
                           actor=admin_user)

    days = dict(office.holidays.values_list("date", "name"))
    assert days[date(2026, 12, 25)] == "Christmas Day"
    assert days[date(2027, 12, 25)] == "Christmas Day"
    assert date(2026, 4, 6) in days            # Easter Monday, England's
    assert date(2026, 1, 2) not in days        # Scotland's 2nd January is not
    assert done.added == len(days) and done.kept == 0
    log = AuditLog.objects.get(action="businesscalendar.holidays_imported")
    assert log.actor == admin_user and log.changes["after"]["source"] == "GB-ENG 2026-2027"


def test_importing_again_adds_nothing_and_keeps_hand_entered_names(office, admin_user):
    Holiday.objects.create(calendar=office, date=date(2026, 12, 25), name="Office closed")
    first = holidays_import(calendar_id=office.id, country="GB", subdivision="ENG", year_from=2026, year_to=2026,
                            actor=admin_user)
    count = office.holidays.count()

    again = holidays_import(calendar_id=office.id, country="GB", subdivision="ENG", year_from=2026, year_to=2026,
                            actor=admin_user)

    assert first.kept == 1 and again.added == 0 and again.kept == count
    assert office.holidays.count() == count
    assert office.holidays.get(date=date(2026, 12, 25)).name == "Office closed"
    assert AuditLog.objects.filter(action="businesscalendar.holidays_imported").count() == 1


@pytest.mark.parametrize(("args", "field", "words"), [
    ({"country": "XX"}, "country", "Unknown country code 'XX'"),
    ({"subdivision": "ZZZ"}, "subdivision", "GB has no subdivision 'ZZZ'; known: ENG, NIR, SCT, WLS."),
    ({"year_from": 2027, "year_to": 2026}, "year_to", "Must not be before the first year."),
    ({"year_from": 2020, "year_to": 2040}, "year_to", "at most 10 years"),
    ({"year_from": 1000}, "year_from", "from 1950 to 2100"),
])
def test_it_refuses_bad_import_parameters_naming_the_field_and_writes_nothing(office, admin_user, args, field,
                                                                              words):
    params = {"country": "GB", "subdivision": "ENG", "year_from": 2026, "year_to": 2027, **args}
    with pytest.raises(ValidationError) as caught:
        holidays_import(calendar_id=office.id, actor=admin_user, **params)
    assert words in caught.value.message_dict[field][0]
    assert not office.holidays.exists()
