"""The weekly e-mail subscription (/agent/insights/subscriptions/, also behind agent:insights_subscription,
which the dashboard's small form posts to): GET lists the person's subscriptions with a form; POST subscribes,
changes the day and hour, or unsubscribes (`action`=subscribe|unsubscribe, `weekday`, `hour`, `team`,
`service`), then goes back to `next` (the dashboard) or this page. Any staff role may subscribe, for the teams
whose figures they see."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse

from insights.forms import SubscriptionForm
from insights.scope import insights_allowed
from insights.subscriptions import WEEKDAYS, subscription_cancel, subscription_set, subscriptions_of
from servicedesk.errors import DomainError
from servicedesk.workspace import agent_render, agent_required, safe_next


@agent_required
def subscription(request):
    if not insights_allowed(request.user):
        raise PermissionDenied("Insights are for agents, managers and admins.")
    status = 200
    if request.method == "POST":
        form = SubscriptionForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            scope = f"{data['team'].name if data['team'] else 'all your teams'} · " \
                    f"{data['service'].name if data['service'] else 'all services'}"
            try:
                if data["action"] == "unsubscribe":
                    if subscription_cancel(user=request.user, team=data["team"], service=data["service"]):
                        messages.success(request, f"You will no longer receive the weekly e-mail for {scope}.")
                    else:
                        messages.info(request, f"You had no weekly e-mail for {scope}.")
                else:
                    kept = next((s for s in subscriptions_of(request.user)
                                 if s.team_id == (data["team"].id if data["team"] else None)
                                 and s.service_id == (data["service"].id if data["service"] else None)), None)
                    weekday = data["weekday"] if data["weekday"] is not None else (kept.weekday if kept else 0)
                    hour = data["hour"] if data["hour"] is not None else (kept.hour if kept else 7)
                    made = subscription_set(user=request.user, team=data["team"], service=data["service"],
                                            weekday=weekday, hour=hour)
                    messages.success(request, f"Weekly e-mail for {scope}: every {WEEKDAYS[made.weekday]} at "
                                              f"{made.hour:02d}:00.")
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None,
                               exc.message.split(": ", 1)[-1])
            else:
                return redirect(safe_next(request, reverse("agent:insights_subscriptions")))
        status = 400
    else:
        form = SubscriptionForm(user=request.user)
    return agent_render(request, "insights/subscriptions.html", {
        "form": form, "subscriptions": subscriptions_of(request.user), "weekdays": WEEKDAYS,
    }, current_nav="insights:subscriptions", status=status)
