"""PLACEHOLDER (owned by the improvements helper): the improvement register's pages."""

from django.http import Http404


def register_page(request):
    raise Http404("not built yet")


def new(request):
    raise Http404("not built yet")


def detail(request, improvement_id):
    raise Http404("not built yet")
