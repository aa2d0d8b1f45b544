from django.contrib import admin, messages
from django.utils.html import format_html

from knowledge import services
from knowledge.models import Article, ArticleVersion, Category, Deflection
from servicedesk.admin import AuditedAdmin, AuditedAdminMixin, ReadOnlyAdmin
from servicedesk.errors import DomainError


@admin.register(Category)
class CategoryAdmin(AuditedAdmin):
    list_display = ["name", "slug", "order"]
    prepopulated_fields = {"slug": ["name"]}


class ArticleVersionInline(admin.TabularInline):
    """The version history: written by knowledge.services on every change of title or body, never edited."""

    model = ArticleVersion
    fields = ["number", "title", "note", "edited_by", "created_at", "body"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class _SavedThroughServices(admin.ModelAdmin):
    def save_model(self, request, obj, form, change):
        services.article_save(article=obj, actor=request.user)


@admin.register(Article)
class ArticleAdmin(AuditedAdminMixin, _SavedThroughServices):
    """Articles are written here (Markdown). Saving goes through knowledge.services.article_save, which adds a
    version when the title or body changed; status changes only through the Publish and Retire actions."""

    list_display = ["title", "category", "audience", "status", "version", "helpful_count", "not_helpful_count",
                    "view_count", "updated_at"]
    list_filter = ["status", "audience", "category"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["services"]
    list_select_related = ["category"]
    fields = ["title", "slug", "category", "audience", "services", "body", "status", "version", "published_at",
              "helpful_count", "not_helpful_count", "view_count", "author", "source_ticket", "preview"]
    readonly_fields = ["status", "version", "published_at", "helpful_count", "not_helpful_count", "view_count",
                       "author", "source_ticket", "preview"]
    inlines = [ArticleVersionInline]
    actions = ["publish", "retire"]

    @admin.display(description="Rendered")
    def preview(self, obj):
        # body_html was sanitised by knowledge.rendering when it was saved.
        return format_html('<div class="kb-body">{}</div>', obj.body_html and _safe(obj.body_html))

    def _each(self, request, queryset, service, done: str):
        count = 0
        for article in queryset:
            try:
                service(article_id=article.id, actor=request.user)
                count += 1
            except DomainError as exc:
                self.message_user(request, f"{article}: {exc.message}", messages.ERROR)
        if count:
            self.message_user(request, f"{count} article{'s' if count != 1 else ''} {done}.", messages.SUCCESS)

    @admin.action(description="Publish selected articles")
    def publish(self, request, queryset):
        self._each(request, queryset, services.article_publish, "published")

    @admin.action(description="Retire selected articles")
    def retire(self, request, queryset):
        self._each(request, queryset, services.article_retire, "retired")


def _safe(html):
    from django.utils.safestring import mark_safe

    return mark_safe(html)  # sanitised by nh3 when it was saved (knowledge.rendering)


@admin.register(Deflection)
class DeflectionAdmin(ReadOnlyAdmin):
    """Articles suggested on the portal's report page and what came of them (knowledge.services): opened,
    solved without a ticket, or raised anyway. knowledge.selectors.deflection_figures counts the rate."""

    list_display = ["created_at", "user", "article", "query", "outcome", "ticket_number"]
    list_filter = ["outcome"]
    search_fields = ["query", "article__title", "user__username", "ticket_number"]
    list_select_related = ["user", "article"]
    readonly_fields = ["user", "article", "query", "outcome", "ticket_number", "created_at", "updated_at"]
