from django import forms

from incidents.models import Incident
from servicedesk.models import Service


class IncidentReportForm(forms.Form):
    """What a requester fills in on the portal."""

    title = forms.CharField(max_length=200, label="What is wrong?",
                            widget=forms.TextInput(attrs={"placeholder": "e.g. Cannot print from the 3rd floor"}))
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}),
                                  label="Details", help_text="What happened, since when, what you tried.")
    service = forms.ModelChoiceField(queryset=Service.objects.filter(active=True), required=False,
                                     label="Affected service", empty_label="I don't know")
    urgency = forms.TypedChoiceField(coerce=int, initial=3, label="How urgent is it for you?",
                                     choices=[(1, "High: I cannot work"), (2, "Medium: I am slowed down"),
                                              (3, "Low: it can wait")])
    attachment = forms.FileField(required=False, label="Screenshot or file")


class CommentForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), label="Reply")
    internal = forms.BooleanField(required=False, label="Internal note (agents only)")
    attachment = forms.FileField(required=False)


class QueueFilterForm(forms.Form):
    status = forms.MultipleChoiceField(choices=Incident._meta.get_field("status").choices, required=False)
    priority = forms.TypedMultipleChoiceField(coerce=int, choices=[(i, f"P{i}") for i in range(1, 6)],
                                              required=False)
