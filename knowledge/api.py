"""REST API of the knowledge base (/api/v1/kb/articles/): read and vote. Agents write articles in admin for
now; every write there goes through knowledge.services."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from knowledge import services
from knowledge.models import Article, ArticleStatus, Audience
from knowledge.selectors import article_for_reader, articles_for_list, vote_of
from servicedesk.api.pagination import PagePagination


class ArticleSerializer(serializers.ModelSerializer):
    category = serializers.SerializerMethodField()
    services = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=ArticleStatus.choices, read_only=True)
    audience = serializers.ChoiceField(choices=Audience.choices, read_only=True)
    rank = serializers.SerializerMethodField(help_text="Relevance to `q` (higher is better); null without `q`.")

    class Meta:
        model = Article
        fields = ["number", "slug", "title", "category", "services", "audience", "status", "version",
                  "helpful_count", "not_helpful_count", "view_count", "published_at", "updated_at", "rank"]
        read_only_fields = fields

    def get_category(self, article) -> str | None:
        return article.category.name if article.category_id else None

    def get_services(self, article) -> list[str]:
        return [service.name for service in article.services.all()]

    def get_rank(self, article) -> float | None:
        rank = getattr(article, "rank", None)
        return None if rank is None else round(float(rank), 6)


class ArticleDetailSerializer(ArticleSerializer):
    html = serializers.CharField(source="body_html", read_only=True,
                                 help_text="The body rendered from Markdown and sanitised.")
    body = serializers.CharField(read_only=True, help_text="The Markdown source.")
    my_vote = serializers.SerializerMethodField(help_text="true / false when the caller voted, else null.")

    class Meta(ArticleSerializer.Meta):
        fields = [f for f in ArticleSerializer.Meta.fields if f != "rank"] + ["html", "body", "my_vote"]
        read_only_fields = fields

    def get_my_vote(self, article) -> bool | None:
        vote = self.context.get("vote")
        return None if vote is None else vote.helpful


class VoteSerializer(serializers.Serializer):
    helpful = serializers.BooleanField(required=True)


class ArticleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Knowledge articles the caller may read: requesters published articles for everyone; agents also
    agents-only articles and drafts. `?q=` searches title and body, best match first."""

    serializer_class = ArticleSerializer
    pagination_class = PagePagination
    lookup_field = "slug"
    filter_backends = []  # q is the only filter: ranked search (knowledge.search)

    def get_queryset(self):
        return articles_for_list(self.request.user, self.request.query_params.get("q", ""))

    @extend_schema(parameters=[OpenApiParameter("q", str, description="Words to search for (web-search syntax)")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _article(self, slug):
        article = article_for_reader(self.request.user, slug)
        if article is None:
            raise Http404
        return article

    @extend_schema(responses={200: ArticleDetailSerializer})
    def retrieve(self, request, slug=None):
        """The article with its rendered HTML; counts one view."""
        article = self._article(slug)
        services.article_viewed(article_id=article.id)
        article.view_count += 1
        context = {**self.get_serializer_context(), "vote": vote_of(request.user, article)}
        return Response(ArticleDetailSerializer(article, context=context).data)

    @extend_schema(request=VoteSerializer, responses={201: ArticleSerializer})
    @action(detail=True, methods=["post"])
    def vote(self, request, slug=None):
        """Answer "Was this helpful?" (`helpful`: true or false): once per person per article (409 after)."""
        article = self._article(slug)
        data = VoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.article_vote(article_id=article.id, user=request.user, helpful=data.validated_data["helpful"])
        article = self._article(slug)
        return Response(ArticleSerializer(article, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)
