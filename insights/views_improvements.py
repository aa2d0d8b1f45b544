"""The improvement register's pages (/agent/insights/improvements/): the register (filters, overdue flags, the
stored before -> after of each entry, CSV/XLSX export), the new and edit forms, and the detail page (the measure
before and after computed live, a weekly chart, status buttons, linked tickets).

Reads through insights.improvements selectors, writes through its services, one per POST; a refused write draws
the page again with the reason on the field it names (400, or 409 for a stale version), nothing saved. Agents
read; a POST from an agent is 403. The figures of an improvement (list, export, detail, chart) are shown only to
a viewer who may see its team's figures (insights.improvements.figures_visible); others see "–" and a note."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from insights import improvements as svc
from insights.forms import ImprovementForm, LinkForm, StatusForm
from insights.models import Improvement, ImprovementStatus
from insights.scope import insights_allowed, teams_visible
from servicedesk.errors import DomainError, InvalidInput, StaleVersion
from servicedesk.exports import Column, export_format, export_refused, export_response
from servicedesk.models import Team
from servicedesk.registry import registry
from servicedesk.workspace import agent_render, agent_required

LIMIT = 200
Status = ImprovementStatus

# The status buttons: label and style, offered from each status (the service accepts any move).
MOVES = {
    Status.PLANNED: [(Status.IN_PROGRESS, "Start", "primary"), (Status.DROPPED, "Drop", "")],
    Status.IN_PROGRESS: [(Status.DONE, "Mark done", "primary"), (Status.PLANNED, "Back to planned", ""),
                         (Status.DROPPED, "Drop", "")],
    Status.DONE: [(Status.IN_PROGRESS, "Reopen", "")],
    Status.DROPPED: [(Status.PLANNED, "Plan again", "")],
}


def _allowed(request) -> None:
    if not insights_allowed(request.user):
        raise PermissionDenied("Insights are for agents, managers and admins.")


def _improvement_or_404(user, improvement_id) -> Improvement:
    found = svc.improvements_visible_to(user).filter(id=improvement_id).first()
    if found is None:
        raise Http404("No such improvement")
    return found


def _filters(request, user) -> tuple[dict, dict]:
    """The register's filters as given (for the form) and as applied."""
    raw = {k: request.GET.get(k, "") for k in ("status", "team", "measure")}
    applied = {}
    if raw["status"] == "overdue":
        applied["overdue"] = True
    elif raw["status"] in Status.values:
        applied["status"] = raw["status"]
    elif raw["status"] == "open":
        applied["status__in"] = list(svc.OPEN)
    if raw["team"] == "none":
        applied["team__isnull"] = True
    elif raw["team"]:
        try:  # not str.isdigit: "²" is a digit that int() refuses
            applied["team_id"] = int(raw["team"])
        except ValueError:
            pass  # not a team: the filter is ignored, as an unknown measure is
    if raw["measure"] in svc.measures():
        applied["measure"] = raw["measure"]
    return raw, applied


def _rows(queryset, today, teams) -> list[dict]:
    """The register's rows; `teams`: svc.figures_teams(viewer). A row whose figures the viewer may not read has
    figures None, "–" before and after, and shown False."""
    all_measures = svc.measures()
    from insights.measures import format_value

    rows = []
    for improvement in queryset:
        measure = all_measures.get(improvement.measure)
        shown = svc.figures_visible(None, improvement, teams=teams)
        figures = svc.improvement_stored(improvement, today=today) if shown else None
        rows.append({
            "improvement": improvement,
            "measure": measure,
            "overdue": svc.is_overdue(improvement, today=today),
            "shown": shown,
            "figures": figures,
            "before": format_value(improvement.measure, improvement.before_value) if measure and shown else "–",
            "after": format_value(improvement.measure, improvement.after_value) if measure and shown else "–",
        })
    return rows


def _figure(row, name):
    return getattr(row["improvement"], name) if row["shown"] else None


def _export_columns():
    return [
        Column("Title", lambda r: r["improvement"].title, width=40),
        Column("Status", lambda r: r["improvement"].get_status_display()),
        Column("Overdue", lambda r: "yes" if r["overdue"] else ""),
        Column("Owner", lambda r: r["improvement"].owner.get_full_name() or r["improvement"].owner.username),
        Column("Team", lambda r: r["improvement"].team.name if r["improvement"].team else "All teams"),
        Column("Service", lambda r: r["improvement"].service.name if r["improvement"].service else "All services"),
        Column("Measure", lambda r: r["measure"].label if r["measure"] else r["improvement"].measure, width=24),
        Column("Started", lambda r: r["improvement"].started_on, kind="date"),
        Column("Due", lambda r: r["improvement"].due_on, kind="date"),
        Column("Done", lambda r: r["improvement"].done_on, kind="date"),
        Column("Before", lambda r: _figure(r, "before_value"), kind="float"),
        Column("After", lambda r: _figure(r, "after_value"), kind="float"),
        Column("Target", lambda r: r["improvement"].target, kind="float"),
        Column("Verdict", lambda r: r["figures"].verdict if r["figures"] else ""),
        Column("Measured at", lambda r: _figure(r, "measured_at"), kind="datetime"),
        Column("Note", lambda r: "" if r["shown"] else svc.FIGURES_HIDDEN.capitalize(), width=40),
    ]


@agent_required
def register_page(request):
    _allowed(request)
    user, today = request.user, timezone.localdate()
    raw, applied = _filters(request, user)
    queryset = svc.improvements_visible_to(user)
    overdue = applied.pop("overdue", False)
    if overdue:
        queryset = queryset.filter(status__in=svc.OPEN, due_on__lt=today)
    queryset = queryset.filter(**applied).order_by("-created_at", "-id")
    try:
        fmt = export_format(request)
    except InvalidInput as exc:
        return export_refused(exc)
    figure_teams = svc.figures_teams(user)
    if fmt:
        rows = (row for chunk in _chunks(queryset, today, figure_teams) for row in chunk)
        return export_response(filename=f"improvements-{today.isoformat()}", fmt=fmt, columns=_export_columns(),
                               rows=rows, sheet="Improvements")
    rows = _rows(queryset[:LIMIT], today, figure_teams)
    teams = teams_visible(user)
    return agent_render(request, "insights/improvement_register.html", {
        "rows": rows, "limit": LIMIT, "filters": raw,
        "figures_hidden": svc.FIGURES_HIDDEN if any(not r["shown"] for r in rows) else "",
        "statuses": Status.choices,
        "teams": Team.objects.order_by("name") if teams is None else teams,
        "measures": [(k, m.label) for k, m in svc.measures().items()],
        "can_write": svc.improvement_can_write(user, None) or bool(svc.improvement_writers_teams(user)),
        "query": request.GET.urlencode(),
    }, current_nav="insights:improvements")


def _chunks(queryset, today, teams, size=500):
    """The register in pages of `size` by id, so an export never holds the whole list."""
    last = None
    while True:
        page = queryset.order_by("-id")
        if last is not None:
            page = page.filter(id__lt=last)
        batch = list(page[:size])
        if not batch:
            return
        yield _rows(batch, today, teams)
        last = batch[-1].id


def _form_errors(form, exc: DomainError) -> None:
    field = exc.field if exc.field in form.fields else None
    message = exc.message.split(": ", 1)[1] if field and exc.message.startswith(f"{field}: ") else exc.message
    form.add_error(field, message)


def _require_writer(user, team=None) -> None:
    if not (svc.improvement_can_write(user, team) or svc.improvement_writers_teams(user)):
        raise PermissionDenied("Only managers and admins record improvements; agents read the register.")


@agent_required
def new(request):
    _allowed(request)
    _require_writer(request.user)
    if request.method == "POST":
        form = ImprovementForm(request.POST, user=request.user)
        if form.is_valid():
            data = dict(form.cleaned_data)
            try:
                improvement = svc.improvement_create(actor=request.user, **data)
            except DomainError as exc:
                _form_errors(form, exc)
            else:
                messages.success(request, f"Improvement “{improvement.title}” recorded.")
                return redirect("agent:insights_improvement", improvement_id=improvement.id)
        return _form_page(request, form, None, status=400)
    form = ImprovementForm(user=request.user, initial={
        "owner": request.user, "started_on": timezone.localdate(), "baseline_days": 30,
        "measure": request.GET.get("measure") or "resolve_mean"})
    return _form_page(request, form, None)


def _form_page(request, form, improvement, status=200):
    return agent_render(request, "insights/improvement_form.html", {
        "form": form, "improvement": improvement,
        "measure_units": {k: m.unit for k, m in svc.measures().items()},
    }, current_nav="insights:improvements", status=status)


@agent_required
def edit(request, improvement_id):
    _allowed(request)
    improvement = _improvement_or_404(request.user, improvement_id)
    if not svc.improvement_can_write(request.user, improvement.team):
        raise PermissionDenied("You may read this improvement, not change it.")
    if request.method == "POST":
        form = ImprovementForm(request.POST, user=request.user, improvement=improvement)
        if form.is_valid():
            try:
                svc.improvement_update(improvement_id=improvement.id, actor=request.user,
                                       version=svc.parse_version(request.POST.get("version")),
                                       **form.cleaned_data)
            except DomainError as exc:
                _form_errors(form, exc)
                return _form_page(request, form, improvement, status=409 if isinstance(exc, StaleVersion) else 400)
            messages.success(request, "Improvement saved.")
            return redirect("agent:insights_improvement", improvement_id=improvement.id)
        return _form_page(request, form, improvement, status=400)
    form = ImprovementForm(user=request.user, improvement=improvement, initial={
        name: getattr(improvement, name) for name in svc.EDITABLE})
    return _form_page(request, form, improvement)


# The chart's buckets: weeks while a period lasts at most WEEKS_MAX weeks (182 days), else calendar months (a
# period is at most 366 days: 14 months at most, counting the cut ones at both ends). So a phase has at most
# BUCKETS_MAX buckets, the page at most twice that, and each phase is one measure_series call (at most two
# queries): the detail page's query count is bounded whatever baseline_days is (tests/insights/
# test_improvements.py asserts the bound).
WEEKS_MAX = 26
BUCKETS_MAX = WEEKS_MAX


def bucket_of(baseline_days: int) -> str:
    """"week" for periods of up to WEEKS_MAX weeks, else "month"."""
    return "week" if baseline_days <= 7 * WEEKS_MAX else "month"


def _buckets(date_from, date_to, bucket: str) -> list[tuple]:
    """[(from, to), ...] covering date_from..date_to: 7-day weeks from date_from, or calendar months (the first
    and last cut at the period's ends)."""
    spans, start = [], date_from
    while start <= date_to:
        if bucket == "week":
            end = start + timedelta(days=6)
        else:
            end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        end = min(end, date_to)
        spans.append((start, end))
        start = end + timedelta(days=1)
    return spans


def weekly_points(improvement: Improvement, figures: svc.BeforeAfter, *, today) -> tuple[str, list[dict]]:
    """The measure per bucket over the before and after periods, both drawn in full: (bucket, points), the
    bucket "week" or "month" (bucket_of the period's length), at most BUCKETS_MAX buckets per phase; one
    measures.measure_series call per phase (at most two queries each), whatever the number of buckets."""
    from insights.measures import format_value, measure_series

    bucket = bucket_of(improvement.baseline_days)
    spans = [("before", figures.before_scope)]
    if figures.after_scope is not None:
        spans.append(("after", figures.after_scope))
    points = []
    for phase, scope in spans:
        pieces = _buckets(scope.date_from, scope.date_to, bucket)
        pieces = pieces[-BUCKETS_MAX:]  # never more (a 26-week period has 26 weeks; 366 days, 14 months at most)
        for (start, end), value in zip(pieces, measure_series(scope, improvement.measure, pieces), strict=True):
            points.append({"phase": phase, "from": start, "to": end, "value": value,
                           "display": format_value(improvement.measure, value)})
    return bucket, points


def _chart(points: list[dict]) -> dict:
    """Bar geometry for the inline SVG (no script, no style attributes): x, y, width, height per bar."""
    values = [p["value"] for p in points if p["value"] is not None]
    top = max(values) if values else 0
    width, height, gap = 560, 120, 4
    bar = max(6, (width - gap * len(points)) // max(1, len(points)))
    bars = []
    for index, point in enumerate(points):
        h = 0 if not top or point["value"] is None else max(2, round(height * point["value"] / top))
        bars.append({**point, "x": index * (bar + gap), "y": height - h, "w": bar, "h": h})
    return {"bars": bars, "width": len(points) * (bar + gap), "height": height, "has_values": bool(values)}


@agent_required
def detail(request, improvement_id):
    _allowed(request)
    user = request.user
    improvement = _improvement_or_404(user, improvement_id)
    can_write = svc.improvement_can_write(user, improvement.team)
    status, errors = 200, {}
    if request.method == "POST":
        if not can_write:
            raise PermissionDenied("You may read this improvement, not change it.")
        action = request.POST.get("action")
        try:
            if action == "status":
                form = StatusForm(request.POST)
                if not form.is_valid():
                    name = next(iter(form.errors))  # status, version or done_on
                    raise InvalidInput(f"{name}: {' '.join(form.errors[name])}", field=name)
                svc.improvement_set_status(improvement_id=improvement.id, actor=user,
                                           status=form.cleaned_data["status"], version=form.cleaned_data["version"],
                                           done_on=form.cleaned_data["done_on"])
                messages.success(request, f"Status: {Status(form.cleaned_data['status']).label}.")
            elif action == "link":
                form = LinkForm(request.POST)
                if not form.is_valid():
                    raise InvalidInput("tickets: give one or more ticket numbers", field="tickets")
                linked = svc.improvement_link_tickets(improvement_id=improvement.id, actor=user,
                                                      tickets=form.cleaned_data["tickets"])
                messages.success(request, f"Linked {', '.join(linked)}." if linked else "Already linked.")
            elif action == "unlink":
                svc.improvement_unlink_ticket(improvement_id=improvement.id, actor=user,
                                              number=request.POST.get("number", ""))
                messages.success(request, f"Unlinked {request.POST.get('number', '')}.")
            else:
                raise InvalidInput("action: not an action of this page", field="action")
        except DomainError as exc:
            errors[exc.field or "action"] = exc.message
            status = 409 if isinstance(exc, StaleVersion) else exc.status_code
            improvement = _improvement_or_404(user, improvement_id)
        else:
            return redirect("agent:insights_improvement", improvement_id=improvement.id)
    return _detail_page(request, improvement, can_write, errors, status)


def _detail_page(request, improvement, can_write, errors, status):
    from insights.measures import format_value

    today = timezone.localdate()
    measure = svc.measures().get(improvement.measure)
    shown = svc.figures_visible(request.user, improvement)
    figures = svc.improvement_before_after(improvement, today=today) if measure and shown else None
    bucket, points = weekly_points(improvement, figures, today=today) if figures else ("week", [])
    periods = svc.improvement_periods(improvement, today=today) if not shown else None
    tickets = []
    for link in improvement.tickets.all():
        kind = registry.kinds.get(link.kind)
        tickets.append({"link": link, "label": kind.label if kind else link.kind})
    ticket_urls = _ticket_urls(request.user, [t["link"] for t in tickets])
    for t in tickets:
        t["url"] = ticket_urls.get(t["link"].number, "")
    return agent_render(request, "insights/improvement_detail.html", {
        "improvement": improvement, "measure": measure, "figures": figures,
        "before": format_value(improvement.measure, figures.before_value) if figures else "–",
        "after": format_value(improvement.measure, figures.after_value) if figures else "–",
        "change": _change(improvement.measure, figures),
        "target": format_value(improvement.measure, improvement.target) if improvement.target is not None else "",
        "chart": _chart(points), "points": points, "bucket": bucket,
        "shown": shown, "figures_hidden": svc.FIGURES_HIDDEN, "periods": periods,
        "moves": MOVES[improvement.status] if can_write else [],
        "can_write": can_write, "overdue": svc.is_overdue(improvement, today=today),
        "tickets": tickets, "errors": errors,
    }, current_nav="insights:improvements", status=status)


def _change(key, figures) -> str:
    from insights.measures import format_value

    if figures is None or figures.change is None:
        return ""
    sign = "+" if figures.change > 0 else "−" if figures.change < 0 else "±"
    return f"{sign}{format_value(key, abs(figures.change))}"


def _ticket_urls(user, links) -> dict[str, str]:
    """Each linked ticket's page through the registry's brief, for the tickets the viewer may open: one find()
    per linked ticket, which is bounded, as an improvement links at most svc.MAX_TICKETS (50) tickets (the
    services refuse more, naming `tickets`)."""
    urls = {}
    for link in links:
        kind = registry.kinds.get(link.kind)
        ticket = kind.find(user, link.number) if kind else None
        if ticket is not None:
            urls[link.number] = kind.brief(ticket).url
    return urls


def register_url() -> str:
    return reverse("agent:insights_improvements")
