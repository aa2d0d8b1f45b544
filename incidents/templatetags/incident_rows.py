"""One row of the workspace's incident table (templates/incidents/_incident_table.html), drawn in Python: the
dashboard and every queue draw 25 to 100 of them, and as a template loop the row cost ~0.4 ms each (some forty
variable look-ups, filters and includes), a quarter of the page."""

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from incidents.states import HoldReason, Status
from servicedesk.templatetags.rows import _name, updated_cell
from sla.templatetags.sla_cells import sla_due

register = template.Library()

STATUS_LABELS = dict(Status.choices)
HOLD_LABELS = dict(HoldReason.choices)
MAJOR = mark_safe('<span class="tag tag-major">Major</span>')
LINKED_ICON = mark_safe('<svg class="icon icon-sm" aria-hidden="true"><use href="#i-git"/></svg>')


@register.simple_tag(takes_context=True)
def incident_row(context, incident, selectable=False):
    href = reverse("agent:incident", kwargs={"number": incident.number})
    number, priority = incident.number, incident.priority
    check = format_html(
        '<td class="check"><input type="checkbox" name="numbers" value="{}" form="bulk-form" aria-label="Select {}"'
        ' data-row-check data-testid="row-check">\n          <input type="hidden" name="version_{}" value="{}"'
        ' form="bulk-form"></td>', number, number, number, incident.version) if selectable else ""
    tags = MAJOR if incident.major else ""
    children = getattr(incident, "children_count", 0)
    if children:
        tags += format_html('<span class="tag tag-linked" title="Incidents linked under this one"'
                            ' data-testid="children-count">{}{} linked</span>', LINKED_ICON, children)
    service = incident.service.name if incident.service_id else "No service"
    hold = format_html("<small>{}</small>", HOLD_LABELS.get(incident.hold_reason, incident.hold_reason)) \
        if incident.hold_reason else ""
    group = (format_html("{}", incident.assignment_group.name) if incident.assignment_group_id
             else mark_safe('<span class="none">No group</span>'))
    assignee = _name(incident.assignee) if incident.assignee_id else "Unassigned"
    return format_html(
        '<tr class="p{}" data-testid="incident-row" data-number="{}" data-href="{}">{}'
        '<td class="num nowrap"><a href="{}" data-row-link>{}</a></td>'
        '<td><span class="badge prio prio-{}" title="Priority {}">P{}</span></td>'
        '<td class="title"><div class="title-line"><a href="{}" title="{}" tabindex="-1">{}</a>{}</div></td>'
        '<td class="stack">{}<small>{}</small></td>'
        '<td class="nowrap stack"><span class="pill status-{}">{}</span>{}</td>'
        '<td class="sla-cell stack">{}</td>'
        '<td class="stack">{}<small>{}</small></td>'
        '<td class="updated">{}</td></tr>',
        priority, number, href, check,
        href, number,
        priority, priority, priority,
        href, incident.title, incident.title, tags,
        _name(incident.requester), service,
        incident.status, STATUS_LABELS.get(incident.status, incident.status), hold,
        sla_due(getattr(incident, "sla_clock", None)),
        group, assignee,
        updated_cell(context, incident.updated_at),
    )


EDIT_ICON = mark_safe('<svg class="icon icon-sm" aria-hidden="true"><use href="#i-edit"/></svg>')
MAJOR_YES = mark_safe('<span class="tag tag-major"><svg class="icon icon-sm" aria-hidden="true"><use href="#i-flame"/>'
                      '</svg>Yes</span>')
EMPTY_FACT = {"assignee": "Unassigned", "assignment_group": "No group"}


@register.simple_tag
def fact_row(fact, incident, page_version):
    """One row of the incident page's details panel as shown (templates/incidents/_fact.html draws the row being
    edited): nine a page, and as a template include each cost ~0.4 ms (two `{% url %}` and some twenty look-ups)."""
    name = fact.name
    if name == "priority":
        value = format_html('<span class="badge prio prio-{}">{}</span> <small class="inline">impact × urgency</small>',
                            incident.priority, fact.value)
    elif name == "major" and incident.major:
        value = MAJOR_YES
    elif fact.value:
        value = format_html("{}", fact.value)
    else:
        value = format_html('<span class="muted">{}</span>', EMPTY_FACT.get(name, "None"))
    edit = ""
    if fact.editable:
        page = reverse("agent:incident", kwargs={"number": incident.number})
        edit = format_html(
            '\n    <a class="edit-btn" href="{}?edit={}#fact-{}" title="Edit" aria-label="Edit {}" data-testid="edit-{}"\n'
            '       hx-get="{}?field={}&amp;version={}" hx-target="#fact-{}" hx-swap="outerHTML">{}</a>',
            page, name, name, fact.label.lower(), name,
            reverse("agent:edit", kwargs={"number": incident.number}), name, page_version, name, EDIT_ICON)
    return format_html(
        '<div class="fact" id="fact-{}" data-testid="fact-{}">\n  <dt>{}</dt>\n  <dd>\n'
        '    <span class="fact-value" data-testid="value-{}">\n      {}\n    </span>{}\n  </dd>\n</div>',
        name, name, fact.label, name, value, edit)
