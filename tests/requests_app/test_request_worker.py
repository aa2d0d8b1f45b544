"""A submitted request's mail, carried by a real Celery worker to a real SMTP sink."""

import pytest
from django.db import transaction

from requests_app.services import request_submit
from tests.requests_app.factories import item

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_submission_mail_reaches_the_requester(worker, smtp, make_user):
    requester = make_user("requester", username="carla", email="carla@example.com", first_name="Carla")
    laptop = item("New laptop", delivery_amount=3, delivery_unit="business_days")
    with transaction.atomic():
        made = request_submit(item=laptop, answers={}, requester=requester, created_by=requester)
        assert not smtp.messages  # nothing leaves before the commit
    assert smtp.received.wait(timeout=45), "the worker sent no mail"
    message = smtp.messages[0]
    assert message["to"] == ["carla@example.com"]
    assert f"Subject: [{made.number}] New laptop" in message["data"]
    assert "We received your request" in message["data"]
    assert "within 3 business days" in message["data"]
