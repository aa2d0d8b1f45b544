"""Kernel signals: moments an app announces without knowing who listens.

`portal_ticket_raised(sender=<ticket model>, user=..., number=...)`: a person raised a ticket through the
portal's report page, sent inside the creating transaction (a listener's writes commit or roll back with it).
The knowledge base listens to record that someone who had opened a suggested article still needed a ticket."""

from django.dispatch import Signal

portal_ticket_raised = Signal()
