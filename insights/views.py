"""PLACEHOLDER (owned by the dashboard helper): the dashboard page, its table exports, the subscription form."""

from django.http import Http404


def dashboard(request):
    raise Http404("not built yet")


def export_table(request, table):
    raise Http404("not built yet")


def subscription(request):
    raise Http404("not built yet")
