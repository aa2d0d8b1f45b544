from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from incidents import workspace
from incidents.models import SavedView
from incidents.states import HoldReason, Status
from servicedesk.models import Service


class IncidentReportForm(forms.Form):
    """What a requester fills in on the portal."""

    title = forms.CharField(max_length=200, label="What is wrong?",
                            widget=forms.TextInput(attrs={"placeholder": "e.g. Cannot print from the 3rd floor"}))
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}),
                                  label="Details", help_text="What happened, since when, what you tried.")
    service = forms.ModelChoiceField(queryset=Service.objects.filter(active=True), required=False,
                                     label="Affected service", empty_label="I don't know",
                                     help_text="If you know it: it tells us how many people may be affected.")
    urgency = forms.TypedChoiceField(coerce=int, initial=3, label="How urgent is it for you?",
                                     choices=[(1, "High: I cannot work"), (2, "Medium: I am slowed down"),
                                              (3, "Low: it can wait")])
    attachment = forms.FileField(required=False, label="Screenshot or file")


class CommentForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), label="Reply")
    internal = forms.BooleanField(required=False, label="Internal note (agents only)")
    attachment = forms.FileField(required=False)


# --- in-place edit ----------------------------------------------------------------------------------

LEVELS = [(1, "1 · High"), (2, "2 · Medium"), (3, "3 · Low")]

# The fields an agent edits in place, in the order the details panel shows them.
EDIT_LABELS = {
    "title": "Title",
    "impact": "Impact",
    "urgency": "Urgency",
    "service": "Service",
    "configuration_item": "Config. item",
    "category": "Category",
    "assignment_group": "Group",
    "assignee": "Assignee",
    "major": "Major incident",
}
# These go through incident_assign (routing rules, membership checks); the rest through incident_update.
ASSIGNMENT_FIELDS = {"assignment_group", "assignee"}


def _value_field(name: str, incident) -> forms.Field:
    label = EDIT_LABELS[name]
    if name == "title":
        return forms.CharField(label=label, max_length=200)
    if name in ("impact", "urgency"):
        return forms.TypedChoiceField(label=label, coerce=int, choices=LEVELS)
    if name == "service":
        return forms.ModelChoiceField(workspace.services(), label=label, required=False, empty_label="None")
    if name == "configuration_item":
        return forms.ModelChoiceField(workspace.configuration_items(), label=label, required=False,
                                      empty_label="None")
    if name == "category":
        return forms.ModelChoiceField(workspace.categories(), label=label, required=False, empty_label="None")
    if name == "assignment_group":
        return forms.ModelChoiceField(workspace.teams(), label=label, required=False, empty_label="No group")
    if name == "assignee":
        people = workspace.team_members(incident.assignment_group_id) if incident.assignment_group_id \
            else workspace.agents()
        field = forms.ModelChoiceField(people, label=label, required=False, empty_label="Unassigned",
                                       to_field_name="username")
        field.label_from_instance = lambda u: u.get_full_name() or u.username
        return field
    if name == "major":
        return forms.TypedChoiceField(label=label, coerce=lambda v: v == "1", choices=[("0", "No"), ("1", "Yes")])
    raise KeyError(name)


def _current(name: str, incident):
    if name == "assignee":
        return incident.assignee.username if incident.assignee_id else ""
    if name == "major":
        return "1" if incident.major else "0"
    if name in ("service", "configuration_item", "category", "assignment_group"):
        return getattr(incident, f"{name}_id")
    return getattr(incident, name)


class FieldEditForm(forms.Form):
    """One field of an incident, edited in place. `version` is the one the agent's page was drawn from."""

    field = forms.ChoiceField(choices=list(EDIT_LABELS.items()), widget=forms.HiddenInput)
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)

    def __init__(self, data=None, *, incident, field_name: str, version: int | None = None):
        super().__init__(data, initial={"field": field_name, "version": version or incident.version,
                                        "value": _current(field_name, incident)},
                         auto_id=False)
        self.field_name = field_name
        self.label = EDIT_LABELS[field_name]
        self.fields["value"] = _value_field(field_name, incident)
        self.fields["value"].widget.attrs.update({"id": f"edit-{field_name}", "data-autofocus": ""})


class ParentLinkForm(forms.Form):
    parent = forms.CharField(max_length=20, required=False, label="Parent incident number")
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class TransitionForm(forms.Form):
    """The lifecycle move; incidents.services decides what is allowed and which field is missing."""

    to = forms.ChoiceField(choices=Status.choices)
    version = forms.IntegerField(min_value=1)
    hold_reason = forms.CharField(required=False, max_length=20)
    reason = forms.CharField(required=False, max_length=2000)
    resolution_code = forms.CharField(required=False, max_length=40)
    resolution_notes = forms.CharField(required=False, max_length=10000)


# --- bulk -------------------------------------------------------------------------------------------

BULK_ACTIONS = [
    ("assign_me", "Assign to me"),
    ("assign", "Assign to…"),
    ("hold", "Put on hold"),
    ("resume", "Resume"),
    ("resolve", "Resolve"),
    ("close", "Close"),
    ("cancel", "Cancel"),
    ("comment", "Add a public reply"),
    ("note", "Add an internal note"),
]


class NumbersField(forms.Field):
    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        return sorted({v.strip().upper() for v in value or [] if v and v.strip()})

    def validate(self, value):
        if not value:
            raise ValidationError("select at least one incident", code="required")


class BulkForm(forms.Form):
    numbers = NumbersField()
    action = forms.ChoiceField(choices=BULK_ACTIONS)
    assignee = forms.ModelChoiceField(workspace.agents(), to_field_name="username", required=False)
    assignment_group = forms.ModelChoiceField(workspace.teams(), required=False)
    hold_reason = forms.ChoiceField(choices=[("", "—"), *HoldReason.choices], required=False)
    resolution_code = forms.ModelChoiceField(workspace.resolution_codes(), to_field_name="code", required=False)
    resolution_notes = forms.CharField(required=False, max_length=10000)
    reason = forms.CharField(required=False, max_length=2000)
    body = forms.CharField(required=False, max_length=20000)

    def clean(self):
        data = super().clean()
        action = data.get("action")
        needs = {
            "assign": [],
            "hold": [("hold_reason", "choose why the incidents wait")],
            "resolve": [("resolution_code", "choose a resolution code"),
                        ("resolution_notes", "say what was done to resolve them")],
            "comment": [("body", "write the reply")],
            "note": [("body", "write the note")],
        }.get(action, [])
        for name, message in needs:
            if not data.get(name) or (isinstance(data[name], str) and not data[name].strip()):
                self.add_error(name, message)
        if action == "assign" and not (data.get("assignee") or data.get("assignment_group")):
            self.add_error("assignee", "choose an agent and/or a group")
        data["versions"] = self._versions(data.get("numbers") or [])
        return data

    def _versions(self, numbers) -> dict[str, int]:
        """Each row sends `version_<number>`: the version the queue page showed. A stale one is refused for
        that incident alone (reported by number); a row without one is not checked."""
        versions = {}
        for number in numbers:
            raw = (self.data.get(f"version_{number}") or "").strip()
            if not raw:
                continue
            if not raw.isdigit():
                self.add_error(None, f"version_{number}: give the version you read, a number")
                continue
            versions[number] = int(raw)
        return versions

    def error_text(self) -> str:
        return "; ".join(f"{name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
                         for name, errors in self.errors.items())


# --- saved views ------------------------------------------------------------------------------------


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=80, label="Name of the view")
    queue = forms.ChoiceField(choices=[(q.key, q.label) for q in [*workspace.QUEUES, workspace.SEARCH]],
                              widget=forms.HiddenInput)
    query = forms.CharField(max_length=900, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError("give the view a name")
        if SavedView.objects.filter(owner=self.owner, name__iexact=name).exists():
            raise ValidationError(f"you already have a view called “{name}”: pick another name, "
                                  "or open that view and delete it first")
        return name

    def query_string(self) -> str:
        """What the view stores: the filters and sort, with the queue it was saved from; never a page."""
        params = workspace.clean_params(QueryDict(self.cleaned_data.get("query") or ""))
        for transient in ("page", "cursor", "queue"):
            params.pop(transient, None)
        params["queue"] = self.cleaned_data["queue"]
        return params.urlencode()
