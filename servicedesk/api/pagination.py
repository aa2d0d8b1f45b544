from django.utils.encoding import force_str
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, CursorPagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from servicedesk.keyset import CURSOR_PARAM, keyset_page


class PagePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class CreatedCursorPagination(CursorPagination):
    """Long lists: a cursor over (-created_at, -id) costs the same at page 1 and page 10,000."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class KeysetPagination(BasePagination):
    """Long lists in their own order (several columns, e.g. most severe first, then latest seen): an exact
    keyset cursor over the queryset's ORDER BY with id as the tiebreak (servicedesk.keyset). No count, no
    OFFSET: every page costs one query of page_size + 1 rows. Answers `results`, `next`, `previous`. A page
    number (`?page=`) is refused with 400 naming `page`: a client counting pages until a 404 would loop."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        if "page" in request.query_params:
            raise ValidationError({"page": ["This list uses cursor pagination: follow `next`."]})
        try:
            size = min(max(int(request.query_params.get(self.page_size_query_param, self.page_size)), 1),
                       self.max_page_size)
        except ValueError:
            raise ValidationError({self.page_size_query_param: ["A whole number."]}) from None
        try:
            self.page = keyset_page(queryset, per_page=size, cursor=request.query_params.get(CURSOR_PARAM),
                                    with_count=False)
        except ValueError as error:
            raise ValidationError({CURSOR_PARAM: [force_str(error).split(": ", 1)[-1]]}) from None
        return self.page.object_list

    def _link(self, cursor):
        url = self.request.build_absolute_uri()
        return replace_query_param(url, CURSOR_PARAM, cursor) if cursor else None

    def get_next_link(self):
        return self._link(self.page.next_cursor)

    def get_previous_link(self):
        if not self.page.has_previous:
            return None
        return self._link(self.page.previous_cursor) or remove_query_param(self.request.build_absolute_uri(),
                                                                           CURSOR_PARAM)

    def get_paginated_response(self, data):
        return Response({"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data})

    def get_paginated_response_schema(self, schema):
        return {"type": "object", "required": ["results"], "properties": {
            "next": {"type": "string", "nullable": True, "format": "uri"},
            "previous": {"type": "string", "nullable": True, "format": "uri"},
            "results": schema}}

    def get_schema_operation_parameters(self, view):
        return [{"name": CURSOR_PARAM, "required": False, "in": "query",
                 "description": "The cursor of a page (from `next` or `previous`).", "schema": {"type": "string"}},
                {"name": self.page_size_query_param, "required": False, "in": "query",
                 "description": f"Rows per page (at most {self.max_page_size}).", "schema": {"type": "integer"}}]
