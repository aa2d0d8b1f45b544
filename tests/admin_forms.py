"""Build the POST a browser would send from an admin change page (its form and inlines, as rendered)."""

from django.forms import MultiWidget


def _put(data, key, value):
    if value is None or value is False:
        return  # an unchecked box or an empty choice is simply not sent
    if value is True:
        value = "on"
    data[key] = [str(v) for v in value] if isinstance(value, list | tuple) else str(value)


def _put_field(data, key, bound):
    widget = bound.field.widget
    value = bound.value()
    if isinstance(widget, MultiWidget):  # e.g. a date and a time input for one datetime
        for index, part in enumerate(widget.decompress(value)):
            _put(data, f"{key}_{index}", part)
    else:
        _put(data, key, value)


def changeform_data(response) -> dict:
    data = {}
    form = response.context["adminform"].form
    for name, field in form.fields.items():
        if not field.disabled:
            _put_field(data, name, form[name])
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            _put(data, f"{formset.prefix}-{name}", management[name].value())
        for row in formset.forms:
            for name, field in row.fields.items():
                if not field.disabled:
                    _put_field(data, row.add_prefix(name), row[name])
    return data
