"""Forms of the agents' knowledge-base editor (/agent/kb/). They only read and check what was typed; every write
goes through knowledge.services."""

from django import forms

from knowledge.models import ArticleStatus, Audience, Category
from servicedesk.models import Service


class ArticleForm(forms.Form):
    title = forms.CharField(max_length=200, label="Title")
    body = forms.CharField(label="Body", widget=forms.Textarea(attrs={"rows": 18}),
                           help_text="Markdown: ## headings, **bold**, lists, tables, [links](/portal/kb/). "
                                     "Raw HTML is sanitised.")
    category = forms.ModelChoiceField(queryset=Category.objects.all(), required=False, label="Category",
                                      empty_label="No category")
    services = forms.ModelMultipleChoiceField(
        queryset=Service.objects.filter(active=True).order_by("name"), required=False, label="Linked services",
        widget=forms.CheckboxSelectMultiple,
    )
    audience = forms.ChoiceField(choices=Audience.choices, initial=Audience.PUBLIC, label="Who may read it",
                                 widget=forms.RadioSelect)
    # The version the editor was opened at: a save against an older one is refused (409), nothing overwritten.
    version = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    # "Write an article from this incident": the ticket it comes from, kept on the article.
    source_kind = forms.CharField(required=False, max_length=20, widget=forms.HiddenInput)
    source_ticket = forms.CharField(required=False, max_length=16, widget=forms.HiddenInput)

    def __init__(self, *args, service_queryset=None, **kwargs):
        super().__init__(*args, **kwargs)
        if service_queryset is not None:
            self.fields["services"].queryset = service_queryset


class ArticleFilter(forms.Form):
    """The list's filters; a value that is not one of the choices is ignored rather than an error."""

    q = forms.CharField(required=False, max_length=200)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *ArticleStatus.choices])
    audience = forms.ChoiceField(required=False, choices=[("", "Any audience"), *Audience.choices])
    category = forms.ModelChoiceField(queryset=Category.objects.all(), required=False, empty_label="Any category")

    def values(self) -> dict:
        self.is_valid()
        return {name: self.cleaned_data.get(name) or "" for name in self.fields}
