"""Problems found before anyone files them: clusters of recurring incidents become ProblemCandidates.

Incidents count when they were raised in the last DetectionSettings.window_days, are not cancelled and are
not yet linked to a problem. Two rules, each a few set-based queries whatever the number of incidents:

- "service" / "ci": the same service (or configuration item) and category, at least min_incidents of them
  (one GROUP BY ... HAVING). A CI cluster whose incidents are all in a service cluster is not proposed twice.
- "similar": titles alike by PostgreSQL pg_trgm (`title % title` at DetectionSettings.similarity), among the
  newest PROBLEM_DETECTION_SIMILAR_MAX incidents of the window, each distinct title compared once (a busy
  desk repeats titles: comparing incidents pairwise made 5M pairs out of 27,000 incidents of 72 titles). The pairs found are grouped
  around centres (the incident with the most alike neighbours first, then the next among those left), not by
  chaining, so "VPN drops" and "VPN slow" do not drag each other's neighbours into one cluster.
  On SQLite (the local run) the same similarity is computed in Python over the window's titles: quadratic,
  fine for a demo's few hundred incidents, not meant for a real desk.

Each cluster is upserted by a stable key: "service:<id>|category:<id>", "ci:<id>|category:<id>", and for
similar titles the key of the stored candidate sharing the most incidents, else "similar:<first incident
id>". An open candidate takes the cluster's incidents and evidence; a dismissed one stays dismissed unless
the cluster grew past size_when_dismissed (it opens again); an accepted one is left alone. Open candidates
no cluster supports any more (their incidents were linked by hand, or left the window) are removed.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q
from django.utils import timezone

from incidents.models import Incident
from incidents.states import Status as IncidentStatus
from problems.models import CandidateState, DetectionSettings, ProblemCandidate, ProblemIncident
from servicedesk.locks import advisory_xact_lock

WORD = re.compile(r"[a-z0-9]+")
# Words too common in incident titles to say what a cluster shares.
STOPWORDS = frozenset("""
a an and are as at be but by can cannot cant could does doesnt dont for from has have i in is isnt it its my
no not of on or our please the this to was we when will with wont you your again after before still
""".split())


@dataclass
class Cluster:
    rule: str  # "service", "ci" or "similar"
    key: str
    incident_ids: list[int]
    first_seen: datetime
    last_seen: datetime
    shared_terms: list[str] = field(default_factory=list)
    similarity: float | None = None
    titles: list[str] = field(default_factory=list)


@dataclass
class DetectionResult:
    found: int = 0
    created: int = 0
    updated: int = 0
    reopened: int = 0
    kept_dismissed: int = 0
    left_accepted: int = 0
    removed: int = 0
    keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("found", "created", "updated", "reopened", "kept_dismissed",
                                              "left_accepted", "removed")}


def window_incidents(since: datetime):
    """The incidents the detector looks at: raised since `since`, not cancelled, linked to no problem."""
    linked = ProblemIncident.objects.filter(incident_id=OuterRef("pk"))
    return (Incident.objects.filter(created_at__gte=since).exclude(status=IncidentStatus.CANCELLED)
            .filter(~Exists(linked)))


def words(text: str) -> list[str]:
    return [w for w in WORD.findall((text or "").lower()) if w not in STOPWORDS and len(w) > 1]


def shared_terms(titles: list[str], limit: int = 5) -> list[str]:
    """Words found in at least half of the titles, most frequent first."""
    counts = Counter(w for title in titles for w in set(words(title)))
    need = max(2, (len(titles) + 1) // 2)
    return [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= need][:limit]


# --- rule (a): same service or CI, and category ---------------------------------------------------------

def _group_clusters(incidents, column: str, rule: str, min_incidents: int) -> list[Cluster]:
    """One GROUP BY (column, category) HAVING count >= min_incidents; on PostgreSQL the members come in the
    same query (array_agg), elsewhere in one more."""
    grouped = (incidents.filter(**{f"{column}__isnull": False, "category__isnull": False})
               .values(column, "category_id")
               .annotate(n=Count("id"), first=Min("created_at"), last=Max("created_at"))
               .filter(n__gte=min_incidents).order_by(column, "category_id"))
    postgres = connection.vendor == "postgresql"
    if postgres:
        grouped = grouped.annotate(ids=ArrayAgg("id", order_by="id"))
    rows = list(grouped)
    if rows and not postgres:
        wanted = {(r[column], r["category_id"]) for r in rows}
        members: dict = {}
        pairs = Q()
        for value, category in wanted:
            pairs |= Q(**{column: value, "category_id": category})
        for incident_id, value, category in incidents.filter(pairs).values_list("id", column, "category_id"):
            members.setdefault((value, category), []).append(incident_id)
        for r in rows:
            r["ids"] = sorted(members[(r[column], r["category_id"])])
    prefix = "service" if column == "service_id" else "ci"
    return [Cluster(rule=rule, key=f"{prefix}:{r[column]}|category:{r['category_id']}", incident_ids=list(r["ids"]),
                    first_seen=r["first"], last_seen=r["last"]) for r in rows]


# --- rule (b): similar titles ----------------------------------------------------------------------------

PAIRS_SQL = """
WITH w AS MATERIALIZED (
    SELECT i.id, i.title FROM incidents_incident i
    WHERE i.created_at >= %(since)s AND i.status <> 'cancelled'
      AND NOT EXISTS (SELECT 1 FROM problems_problemincident l WHERE l.incident_id = i.id)
    ORDER BY i.created_at DESC, i.id DESC
    LIMIT %(cap)s
), t AS MATERIALIZED (
    SELECT title FROM w GROUP BY title
), alike AS (
    SELECT a.title AS ta, b.title AS tb, similarity(a.title, b.title) AS score
    FROM t a JOIN t b ON b.title %% a.title
)
SELECT x.id, y.id, alike.score
FROM alike JOIN w x ON x.title = alike.ta JOIN w y ON y.title = alike.tb AND y.id > x.id
"""


def _similar_pairs_postgres(since: datetime, threshold: float) -> list[tuple[int, int, float]]:
    with transaction.atomic(), connection.cursor() as cursor:
        # The % operator (the one the trigram GIN index answers) compares with this setting; LOCAL keeps it
        # to this transaction.
        cursor.execute("SELECT set_config('pg_trgm.similarity_threshold', %s, true)", [str(threshold)])
        cursor.execute(PAIRS_SQL, {"since": since, "cap": similar_cap()})
        return cursor.fetchall()


def trigrams(text: str) -> set[str]:
    """pg_trgm's trigrams: per word of letters and digits, lower-cased, padded with two spaces before and one
    after."""
    grams = set()
    for word in re.findall(r"[^\W_]+", (text or "").lower()):
        padded = f"  {word} "
        grams.update(padded[i:i + 3] for i in range(len(padded) - 2))
    return grams


def trigram_similarity(a: str, b: str) -> float:
    ga, gb = trigrams(a), trigrams(b)
    if not ga or not gb:
        return 0.0
    return len(ga & gb) / len(ga | gb)


def similar_cap() -> int:
    """The similar-titles rule compares at most this many incidents, the newest of the window
    (PROBLEM_DETECTION_SIMILAR_MAX): comparing titles is quadratic, and a desk taking ~900 incidents a day has
    27,000 in a 30-day window. The service and CI rules (one GROUP BY) still read the whole window."""
    return getattr(settings, "PROBLEM_DETECTION_SIMILAR_MAX", 2000)


def _similar_pairs_python(incidents, threshold: float) -> list[tuple[int, int, float]]:
    newest = incidents.order_by("-created_at", "-id").values_list("id", "title")[:similar_cap()]
    rows = [(i, trigrams(t)) for i, t in sorted(newest)]
    pairs = []
    for n, (a, ga) in enumerate(rows):
        for b, gb in rows[n + 1:]:
            if ga and gb:
                score = len(ga & gb) / len(ga | gb)
                if score >= threshold:
                    pairs.append((a, b, score))
    return pairs


def centre_clusters(pairs, min_size: int) -> list[tuple[list[int], float]]:
    """Groups alike pairs around centres: the incident with the most neighbours (ties: the oldest id) takes
    itself and its neighbours still free; repeat with what is left. Returns (incident ids, lowest similarity
    to the centre) for groups of at least `min_size`."""
    neighbours: dict[int, dict[int, float]] = {}
    for a, b, score in pairs:
        neighbours.setdefault(a, {})[b] = score
        neighbours.setdefault(b, {})[a] = score
    taken: set[int] = set()
    clusters = []
    while True:
        best, best_free = None, []
        for node in sorted(neighbours):
            if node in taken:
                continue
            free = [n for n in neighbours[node] if n not in taken]
            if len(free) > len(best_free):
                best, best_free = node, free
        if best is None or len(best_free) + 1 < min_size:
            return clusters
        members = sorted([best, *best_free])
        taken.update(members)
        clusters.append((members, min(neighbours[best][n] for n in best_free)))


def _similar_clusters(incidents, since, config) -> list[Cluster]:
    if connection.vendor == "postgresql":
        pairs = _similar_pairs_postgres(since, config.similarity)
    else:
        pairs = _similar_pairs_python(incidents, config.similarity)
    groups = centre_clusters(pairs, config.min_incidents)
    if not groups:
        return []
    ids = [i for members, _ in groups for i in members]
    facts = {i: (t, c) for i, t, c in Incident.objects.filter(id__in=ids).values_list("id", "title", "created_at")}
    clusters = []
    for members, lowest in groups:
        seen = [facts[i][1] for i in members]
        clusters.append(Cluster(rule="similar", key=f"similar:{members[0]}", incident_ids=members,
                                first_seen=min(seen), last_seen=max(seen), similarity=round(lowest, 3),
                                titles=[facts[i][0] for i in members]))
    return clusters


# --- both rules, and the upsert --------------------------------------------------------------------------

def clusters_find(*, now: datetime | None = None, config: DetectionSettings | None = None) -> list[Cluster]:
    """Every cluster in the window, service clusters first; a cluster whose incidents all belong to one found
    before it is dropped (it says nothing new)."""
    config = config or DetectionSettings.get()
    now = now or timezone.now()
    since = now - timedelta(days=config.window_days)
    incidents = window_incidents(since)
    found = (_group_clusters(incidents, "service_id", "service", config.min_incidents)
             + _group_clusters(incidents, "configuration_item_id", "ci", config.min_incidents)
             + _similar_clusters(incidents, since, config))
    kept: list[Cluster] = []
    for cluster in found:
        members = set(cluster.incident_ids)
        if not any(members <= set(k.incident_ids) for k in kept):
            kept.append(cluster)
    missing = {i for c in kept if not c.titles for i in c.incident_ids}
    titles = dict(Incident.objects.filter(id__in=missing).values_list("id", "title")) if missing else {}
    for cluster in kept:
        if not cluster.titles:
            cluster.titles = [titles[i] for i in cluster.incident_ids]
        cluster.shared_terms = shared_terms(cluster.titles)
    return kept


def _stable_similar_keys(clusters: list[Cluster]) -> None:
    """A similar-titles cluster keeps the key of the stored candidate it shares most incidents with, so it is
    the same candidate as it grows (its first incident may leave the window)."""
    similar = [c for c in clusters if c.rule == "similar"]
    if not similar:
        return
    ids = {i for c in similar for i in c.incident_ids}
    through = ProblemCandidate.incidents.through
    owners: dict[int, set[str]] = {}
    for incident_id, key in (through.objects.filter(incident_id__in=ids, problemcandidate__key__startswith="similar:")
                             .values_list("incident_id", "problemcandidate__key")):
        owners.setdefault(incident_id, set()).add(key)
    used: set[str] = set()
    for cluster in similar:
        votes = Counter(k for i in cluster.incident_ids for k in owners.get(i, ()))
        for key, _ in votes.most_common():
            if key not in used:
                cluster.key = key
                break
        used.add(cluster.key)


def _title(cluster: Cluster, names: dict) -> str:
    terms = " ".join(cluster.shared_terms[:3])
    if cluster.rule == "similar":
        # The shortest of the alike titles reads best ("Recurring: SAP login page times out").
        text = f"Recurring: {min(cluster.titles, key=lambda t: (len(t), t))}"
    else:
        what = names.get(cluster.key, cluster.key)
        text = f"Recurring {what}" + (f": {terms}" if terms else "")
    return text[:200]


def _names(clusters: list[Cluster]) -> dict[str, str]:
    """"<service or CI> / <category>" for the grouped clusters, in three queries whatever their number."""
    from incidents.models import Category
    from servicedesk.models import ConfigurationItem, Service

    parsed = {}
    for c in clusters:
        if c.rule in ("service", "ci"):
            left, right = c.key.split("|")
            parsed[c.key] = (c.rule, int(left.split(":")[1]), int(right.split(":")[1]))
    services = dict(Service.objects.filter(id__in={v for r, v, _ in parsed.values() if r == "service"})
                    .values_list("id", "name"))
    items = dict(ConfigurationItem.objects.filter(id__in={v for r, v, _ in parsed.values() if r == "ci"})
                 .values_list("id", "name"))
    categories = {c.id: c.name for c in Category.objects.filter(id__in={c for _, _, c in parsed.values()})}
    return {key: f"{(services if r == 'service' else items).get(v, '?')} / {categories.get(c, '?')}"
            for key, (r, v, c) in parsed.items()}


def _evidence(cluster: Cluster, names: dict) -> dict:
    evidence = {
        "rule": cluster.rule, "count": len(cluster.incident_ids),
        "first_seen": cluster.first_seen.isoformat(), "last_seen": cluster.last_seen.isoformat(),
        "shared_terms": cluster.shared_terms,
    }
    if cluster.rule == "similar":
        evidence["similarity"] = cluster.similarity
    else:
        evidence["shared"] = names.get(cluster.key, cluster.key)
    return evidence


@transaction.atomic
def candidates_detect(*, now: datetime | None = None) -> DetectionResult:
    """Find the clusters and upsert them as candidates (see the module's docstring). Safe to run twice at once:
    a transaction-level advisory lock makes a second run wait and then see the first one's candidates."""
    advisory_xact_lock("problems.candidates_detect")
    config = DetectionSettings.get()
    clusters = clusters_find(now=now, config=config)
    _stable_similar_keys(clusters)
    names = _names(clusters)
    result = DetectionResult(found=len(clusters))
    stored = {c.key: c for c in ProblemCandidate.objects.select_for_update().filter(
        Q(key__in=[c.key for c in clusters]) | Q(state=CandidateState.OPEN))}
    through = ProblemCandidate.incidents.through
    current: dict[int, set[int]] = {}
    for candidate_id, incident_id in through.objects.filter(
            problemcandidate_id__in=[c.id for c in stored.values()]).values_list("problemcandidate_id", "incident_id"):
        current.setdefault(candidate_id, set()).add(incident_id)
    touched: list[tuple[ProblemCandidate, list[int]]] = []
    for cluster in clusters:
        result.keys.append(cluster.key)
        candidate = stored.get(cluster.key)
        size = len(cluster.incident_ids)
        if candidate is None:
            candidate = ProblemCandidate(key=cluster.key)
            result.created += 1
        elif candidate.state == CandidateState.ACCEPTED:
            result.left_accepted += 1
            continue
        elif candidate.state == CandidateState.DISMISSED:
            if size <= candidate.size_when_dismissed:
                result.kept_dismissed += 1
                continue
            # It grew past what the manager saw when dismissing it: propose it again.
            candidate.state = CandidateState.OPEN
            candidate.decided_by = candidate.decided_at = None
            result.reopened += 1
        elif (current.get(candidate.id, set()) == set(cluster.incident_ids)
              and candidate.evidence == _evidence(cluster, names)):
            continue  # nothing new: no write, updated_at keeps saying when it last changed
        else:
            result.updated += 1
        candidate.title = _title(cluster, names)
        candidate.evidence = _evidence(cluster, names)
        candidate.save()
        touched.append((candidate, cluster.incident_ids))
    if touched:
        through.objects.filter(problemcandidate_id__in=[c.id for c, _ in touched]).delete()
        through.objects.bulk_create([through(problemcandidate_id=c.id, incident_id=i)
                                     for c, ids in touched for i in ids])
    found_keys = set(result.keys)
    stale = [c.id for key, c in stored.items() if c.state == CandidateState.OPEN and key not in found_keys]
    if stale:
        result.removed = len(stale)
        ProblemCandidate.objects.filter(id__in=stale).delete()
    return result
