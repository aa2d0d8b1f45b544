"""Knowledge articles: Markdown written by agents, rendered once per saved version into sanitised HTML
(knowledge.rendering), searched with PostgreSQL full text (knowledge.search), voted on by readers.

Every write goes through knowledge.services: a change of title or body adds an ArticleVersion, re-renders
the HTML and refreshes the search document."""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Audience(models.TextChoices):
    PUBLIC = "public", "Everyone"
    AGENTS = "agents", "Agents only"


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class Category(models.Model):
    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["order", "name"]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name


class Article(models.Model):
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    body = models.TextField(help_text="Markdown. Raw HTML is sanitised; images only from this site.")
    # The body rendered and sanitised when it was saved (knowledge.rendering): pages never render Markdown.
    body_html = models.TextField(blank=True, editable=False)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT, related_name="articles")
    services = models.ManyToManyField("servicedesk.Service", blank=True, related_name="articles")
    audience = models.CharField(max_length=10, choices=Audience.choices, default=Audience.PUBLIC)
    status = models.CharField(max_length=10, choices=ArticleStatus.choices, default=ArticleStatus.DRAFT)
    version = models.PositiveIntegerField(default=1, editable=False)
    helpful_count = models.PositiveIntegerField(default=0, editable=False)
    not_helpful_count = models.PositiveIntegerField(default=0, editable=False)
    view_count = models.PositiveIntegerField(default=0, editable=False)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The ticket an agent wrote the article from ("Write an article from this incident"), e.g. INC0001234.
    source_ticket = models.CharField(max_length=16, blank=True, editable=False)
    # title (A) and body (B) as a tsvector, kept by knowledge.search; its GIN index exists on PostgreSQL only
    # (migration 0002). The local SQLite run searches an FTS5 table instead.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["title"]
        indexes = [models.Index(fields=["status", "audience"], name="kb_article_visible_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ArticleStatus.values), name="kb_article_status_valid"),
            models.CheckConstraint(condition=Q(audience__in=Audience.values), name="kb_article_audience_valid"),
        ]

    def __str__(self):
        return self.title

    @property
    def number(self) -> str:
        return f"KB{self.id:05d}"


class ArticleVersion(models.Model):
    """The title and body of one saved change, with who made it and when."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField()
    note = models.CharField(max_length=200, blank=True, help_text="Why this version was saved, e.g. its source.")
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["article", "number"], name="kb_version_unique_number")]

    def __str__(self):
        return f"{self.article} v{self.number}"


class Vote(models.Model):
    """One reader's answer to "Was this helpful?": one per person per article."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    helpful = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["article", "user"], name="kb_vote_once_per_user")]

    def __str__(self):
        return f"{self.user} on {self.article}: {'helpful' if self.helpful else 'not helpful'}"


class DeflectionOutcome(models.TextChoices):
    OPENED = "opened", "Opened a suggestion"
    SOLVED = "solved", "Solved without a ticket"
    SUBMITTED = "submitted", "Raised a ticket anyway"


class Deflection(models.Model):
    """An article suggested while someone reported an issue, and what came of it: they opened it, it solved
    their problem (no ticket: a deflection), or they raised the ticket anyway. Written by knowledge.services;
    the deflection rate is solved / (solved + submitted)."""

    Outcome = DeflectionOutcome

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    article = models.ForeignKey(Article, null=True, on_delete=models.SET_NULL, related_name="deflections")
    query = models.CharField(max_length=200, blank=True, help_text="What the person had typed as the title.")
    outcome = models.CharField(max_length=10, choices=DeflectionOutcome.choices, default=DeflectionOutcome.OPENED)
    ticket_number = models.CharField(max_length=16, blank=True, help_text="The ticket raised anyway.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_at", "outcome"], name="kb_deflection_report_idx"),
            models.Index(fields=["updated_at"], name="kb_deflection_updated_idx"),
            # A ticket raised anyway finds the person's recent opened suggestions through this.
            models.Index(fields=["user", "created_at"], name="kb_deflection_open_idx",
                         condition=Q(outcome="opened")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(outcome__in=DeflectionOutcome.values), name="kb_deflection_outcome_valid"),
        ]

    def __str__(self):
        return f"{self.user} · {self.article} · {self.outcome}"
