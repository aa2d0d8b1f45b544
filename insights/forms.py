"""Forms of the improvement register and the weekly e-mail. They parse and offer choices; the services in
insights.improvements / insights.subscriptions decide, and their InvalidInput lands on the field it names."""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from insights.improvements import date_bounds, improvement_writers_teams, measures
from insights.models import Improvement, ImprovementStatus
from servicedesk.models import Service, Team
from servicedesk.roles import STAFF_ROLES

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.get_full_name() or obj.get_username()


def staff_users():
    return (get_user_model().objects.filter(is_active=True)
            .filter(Q(is_superuser=True) | Q(groups__name__in=[r.value for r in STAFF_ROLES]))
            .distinct().order_by("first_name", "last_name", "username"))


def measure_choices():
    return [(key, m.label) for key, m in measures().items()]


class ImprovementForm(forms.Form):
    title = forms.CharField(max_length=200)
    why = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), label="Why",
                          help_text="The problem seen, and the change expected.")
    owner = StaffChoiceField(queryset=get_user_model().objects.none())
    measure = forms.ChoiceField(choices=(), help_text="The measure this should move.")
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="All teams",
                                  help_text="Measured for this team.")
    service = forms.ModelChoiceField(queryset=Service.objects.order_by("name"), required=False,
                                     empty_label="All services", help_text="Measured for this service.")
    target = forms.FloatField(required=False, help_text="The value aimed at, in the measure's unit "
                                                        "(percent, hours, score 1-5 or a count).")
    due_on = forms.DateField(required=False, widget=DATE, label="Due")
    started_on = forms.DateField(widget=DATE, label="Started",
                                 help_text="The baseline (before) ends the day before.")
    baseline_days = forms.IntegerField(min_value=1, max_value=366, initial=30, label="Period (days)",
                                       help_text="Length of the before and after periods.")
    tickets = forms.CharField(required=False, label="Tickets",
                              help_text="Numbers of the tickets behind it, e.g. INC0001001 PRB0001002.")

    def __init__(self, *args, user, improvement: Improvement | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = staff_users()
        self.fields["measure"].choices = measure_choices()
        teams = improvement_writers_teams(user)
        team = self.fields["team"]
        if teams is None:
            team.queryset = Team.objects.order_by("name")
        else:
            # Only admins record an improvement of all teams (its figures are every team's).
            team.queryset = Team.objects.filter(id__in=[t.id for t in teams]).order_by("name")
            team.required, team.empty_label = True, "Choose a team"
            team.error_messages = {**team.error_messages, "required": "Choose one of your teams."}
            team.help_text = "Measured for this team: one of yours (only admins record one for all teams)."
        if improvement is not None:
            del self.fields["tickets"]  # linked on the detail page

    def _bounded(self, name):
        value = self.cleaned_data.get(name)
        if value is not None:
            first, last = date_bounds(name)
            if not first <= value <= last:
                raise forms.ValidationError(f"Give a date from {first.isoformat()} to {last.isoformat()}.")
        return value

    def clean_started_on(self):
        return self._bounded("started_on")

    def clean_due_on(self):
        return self._bounded("due_on")


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=ImprovementStatus.choices)
    version = forms.IntegerField(required=False)
    done_on = forms.DateField(required=False)

    def clean_done_on(self):
        value = self.cleaned_data.get("done_on")
        if value is not None:
            first, last = date_bounds("done_on")
            if not first <= value <= last:
                raise forms.ValidationError(f"Give a date from {first.isoformat()} to {last.isoformat()}.")
        return value


class LinkForm(forms.Form):
    tickets = forms.CharField(max_length=1000, label="Ticket numbers")


class SubscriptionForm(forms.Form):
    WEEKDAYS = [(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday"),
                (5, "Saturday"), (6, "Sunday")]

    action = forms.ChoiceField(choices=[("subscribe", "Subscribe"), ("unsubscribe", "Unsubscribe")],
                               initial="subscribe")
    # Left out (the dashboard's button sends neither): keep the subscription's day and hour, or Monday 07:00.
    weekday = forms.TypedChoiceField(choices=WEEKDAYS, coerce=int, initial=0, required=False, empty_value=None)
    hour = forms.TypedChoiceField(choices=[(h, f"{h:02d}:00") for h in range(24)], coerce=int, initial=7,
                                  required=False, empty_value=None)
    team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False, empty_label="All my teams")
    service = forms.ModelChoiceField(queryset=Service.objects.all(), required=False, empty_label="All services")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        from insights.scope import teams_visible

        teams = teams_visible(user)
        self.fields["team"].queryset = Team.objects.order_by("name") if teams is None \
            else Team.objects.filter(id__in=[t.id for t in teams]).order_by("name")
        self.fields["service"].queryset = Service.objects.order_by("name")
