"""The portal's search box (/portal/search/, htmx partial): latency over 10k knowledge articles and 1k catalog
items on PostgreSQL, against a raw-SQL baseline of the same two searches in the same run. Goal: p95 < 100 ms.

Prints p50/p95 per query for: the whole HTML request (what htmx asks as someone types), the registry call
alone (servicedesk.workspace.portal_search: both providers), and the two raw SQL statements, checked first to
find the same articles and catalog items in the same order as the page; the three alternate sample by sample.
Not a pass/fail test.   python3 dev.py bench bench/bench_portal_search.py   (SD_BENCH_ARTICLES, SD_BENCH_ITEMS to resize)
"""

import os
import random
import time

from common import check_same, machine_load, setup_bench_database, summary, timed

setup_bench_database("servicedesk_bench_portal")

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from knowledge.models import Article  # noqa: E402
from knowledge.search import search_refresh  # noqa: E402
from requests_app.models import CatalogCategory, CatalogItem  # noqa: E402
from servicedesk.models import Team  # noqa: E402
from servicedesk.services import user_provision  # noqa: E402
from servicedesk.workspace import portal_search  # noqa: E402

ARTICLES = int(os.environ.get("SD_BENCH_ARTICLES", "10000"))
ITEMS = int(os.environ.get("SD_BENCH_ITEMS", "1000"))
REPEAT = int(os.environ.get("SD_BENCH_REPEAT", "100"))

WORDS = ("vpn password printer laptop email outlook calendar wifi network monitor badge access group licence "
         "software install update reset account token phone headset teams share drive folder backup restore "
         "invoice expense travel booking desk chair keyboard mouse docking station screen browser certificate "
         "firewall proxy mailbox quota storage camera microphone meeting room projector scanner").split()
FILLER = ("the a to and of how when your with from after before please open click select then check sign in out "
          "use on off new old first again still working error message shows cannot").split()


def vocabulary(rng, size=4000):
    letters = "bcdfghklmnprstvz"
    vowels = "aeiou"
    return sorted({"".join(rng.choice(letters) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
                   for _ in range(size)})


def sentence(rng, n, topics=WORDS, common=FILLER, rare=(), share=.35):
    """n words: a `share` of them from `topics`, a few from the long tail (`rare`), the rest common ones."""
    out = []
    for _ in range(n):
        roll = rng.random()
        out.append(rng.choice(topics) if roll < share else rng.choice(rare) if rare and roll < share + .3
                   else rng.choice(common))
    return " ".join(out)


def seed():
    rng = random.Random(8)
    rare = vocabulary(rng)
    # Each article is about two or three topics (so a topic word matches a few hundred of 10k articles, as in a
    # real knowledge base) in ~240 words of prose; "error", "working"... are in nearly every one (worst case).
    if Article.objects.count() != ARTICLES or not Article.objects.filter(slug="bench-v2-0").exists():
        Article.objects.all().delete()
        now = timezone.now()
        batch = []
        for n in range(ARTICLES):
            topics = rng.sample(WORDS, rng.randint(2, 3))
            batch.append(Article(
                title=f"{sentence(rng, 6, topics, FILLER, share=.5).capitalize()} #{n}", slug=f"bench-v2-{n}",
                body="\n\n".join(sentence(rng, 60, topics, FILLER, rare, share=.08) for _ in range(4)),
                body_html="<p>bench</p>", status="published" if n % 10 else "draft",
                audience="public" if n % 7 else "agents", published_at=now))
        Article.objects.bulk_create(batch, batch_size=1000)
        ids = list(Article.objects.values_list("id", flat=True))
        for start in range(0, len(ids), 1000):
            search_refresh(ids[start:start + 1000])
    if CatalogItem.objects.count() < ITEMS:
        CatalogItem.objects.all().delete()
        team = Team.objects.get_or_create(name="Service Desk")[0]
        categories = [CatalogCategory.objects.get_or_create(name=f"Bench category {n}")[0] for n in range(12)]
        CatalogItem.objects.bulk_create([
            CatalogItem(name=f"{sentence(rng, 3).capitalize()} {n}", description=sentence(rng, 25),
                        category=categories[n % 12], fulfilment_team=team,
                        audience="everyone" if n % 5 else "groups")
            for n in range(ITEMS)], batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


RAW_ARTICLES = """
SELECT a.id, a.title, a.slug, c.name
FROM knowledge_article a LEFT JOIN knowledge_category c ON c.id = a.category_id
WHERE a.status = 'published' AND a.audience = 'public' AND a.search_vector @@ websearch_to_tsquery('english', %s)
ORDER BY ts_rank(a.search_vector, websearch_to_tsquery('english', %s)) DESC, a.published_at DESC, a.id
LIMIT 6
"""
# Every word of the query (up to 8) in the name or the description, a match in the name first: what
# requests_app.selectors.catalog_search does. (The bench's requester has no organisation or group, so the items
# for organisations or groups, which the page checks with EXISTS, are left out here: the rows are the same,
# and checked to be.)
RAW_ITEMS = """
SELECT i.id, i.name, i.description, c.name
FROM requests_app_catalogitem i JOIN requests_app_catalogcategory c ON c.id = i.category_id
WHERE i.active AND i.audience = 'everyone' AND {every_word}
ORDER BY CASE WHEN {in_name} THEN 1 ELSE 0 END DESC, i.name, i.id
LIMIT 6
"""


def raw(q):
    """The two searches by hand; returns what they found: article slugs, then item ids, in their order."""
    words = q.split()[:8]
    likes = ["%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for w in words]
    items_sql = RAW_ITEMS.format(
        every_word=" AND ".join(["(i.name || ' ' || i.description) ILIKE %s"] * len(words)),
        in_name=" AND ".join(["i.name ILIKE %s"] * len(words)))

    def run():
        with connection.cursor() as cursor:
            cursor.execute(RAW_ARTICLES, [q, q])
            found = [row[2] for row in cursor.fetchall()]
            cursor.execute(items_sql, likes + likes)
            found += [str(row[0]) for row in cursor.fetchall()]
        return found, None
    return run


def shown(person, q):
    """What the portal's search shows: article slugs, then catalog item ids, in the page's order."""
    keys = []
    for group in portal_search(person, q, 6):
        for hit in group.hits:
            keys.append(hit.url.rstrip("/").rsplit("/", 1)[-1])
    return keys, None


started = time.perf_counter()
seed()
print(f"\n== {Article.objects.filter(status='published', audience='public').count():,} readable articles "
      f"of {Article.objects.count():,}, {CatalogItem.objects.count():,} catalog items "
      f"(ready in {time.perf_counter() - started:.1f}s)")
person, _ = user_provision(username="bench-requester", role="requester", email="bench@example.com")
browser = Client(HTTP_HOST="localhost")
browser.force_login(person)

QUERIES = ["vpn", "reset password", "docking station screen", "certificate", "printer error",
           "error (in nearly every article: worst case)", "zebra (no match)"]
for label in QUERIES:
    q = label.split(" (")[0]

    def page(q=q):
        response = browser.get("/portal/search/", {"q": q}, HTTP_HX_REQUEST="true", secure=True)
        assert response.status_code == 200, response.status_code

    def registry_only(q=q):
        portal_search(person, q, 6)

    check_same(f"portal search q={q!r}", shown(person, q), raw(q)())
    for _ in range(5):  # warm: templates compiled, plans cached, pages in PostgreSQL's buffers
        page()
        raw(q)()
    with CaptureQueriesContext(connection) as ctx:
        page()
    hits = sum(len(g.hits) for g in portal_search(person, q, 6))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM knowledge_article WHERE status = 'published' AND audience = 'public' "
                       "AND search_vector @@ websearch_to_tsquery('english', %s)", [q])
        matching = cursor.fetchone()[0]
    print(f"\nq={label!r}: {matching:,} matching articles ranked, {hits} hits shown, "
          f"{len(ctx.captured_queries)} queries per request")
    samples = {"page": [], "registry": [], "raw": []}
    baseline = raw(q)
    for _ in range(REPEAT):  # the three alternate, so a change of the machine's load falls on each alike
        samples["page"] += timed(page, 1)
        samples["registry"] += timed(registry_only, 1)
        samples["raw"] += timed(baseline, 1)
    print(f"  HTML /portal/search/ (htmx)   {summary(samples['page'])}")
    print(f"  registry (both providers)     {summary(samples['registry'])}")
    print(f"  raw SQL baseline              {summary(samples['raw'])}   "
          f"(same articles and items, same order: checked)")
print(f"\nmachine at the end: {machine_load()}")
