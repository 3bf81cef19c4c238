"""Usage metering: which API key was served which Wikipedia content, per day.

:class:`UsageMeter` counts in memory — one dictionary increment under a lock per request and
per page served, microseconds — and a background thread writes what accumulated to the usage
database (SQLite, WAL) in one transaction of additive upserts every ``flush_seconds``
(``WIKIRAG_USAGE_FLUSH_SECONDS``, default 1 s), and once more when the service shuts down
gracefully (SIGTERM, Ctrl-C). **A crash (kill -9, power loss) loses at most the last flush
interval** of counts; a graceful shutdown loses nothing.

What is counted, per (key id, UTC day, route template):

- ``usage_requests``: requests admitted (authenticated, within rate limit and quota) on every
  ``/v1`` route;
- ``usage_content``, further per (wiki, page id): ``passages`` served and their ``chars``
  (search results, passage lookups, the passages of a cited revision, the passages an
  attribution cites), ``citations`` resolved (``/v1/citations``) and ``attributions``
  computed (one per reference returned by ``/v1/attribute``; ``chars`` there are the quotes);
- ``usage_queries``: query text, only for keys that agreed to it (``keys create
  --store-queries``) or when ``WIKIRAG_USAGE_STORE_QUERIES`` is on; rows older than
  ``WIKIRAG_USAGE_QUERY_RETENTION_DAYS`` are deleted by the flusher.

Monthly quota counts come from the meter: the month's persisted totals of a key (read once per
process and month) plus everything counted since, so they survive restarts. With several
worker processes each process enforces the quota on its own view (the database totals stay
exact; the quota can be overshot by what the other workers have not flushed yet).

Usage::

    >>> meter = UsageMeter(Path("var/index/usage.sqlite"), flush_seconds=1.0)  # doctest: +SKIP
    >>> meter.start()                                                       # doctest: +SKIP
    >>> meter.admit("3f2a…", "/v1/search", Quota(requests=1000))            # doctest: +SKIP
    >>> meter.record_passages("3f2a…", "/v1/search", records)               # doctest: +SKIP
    >>> meter.stop()  # the last flush                                      # doctest: +SKIP
    >>> usage_rows(meter.path, "day", start, end, key_id="3f2a…")          # doctest: +SKIP
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

__all__ = [
    "Admission",
    "GroupBy",
    "MonthUsage",
    "Quota",
    "Served",
    "UsageMeter",
    "UsageRow",
    "connect_usage_db",
    "first_of_next_month",
    "usage_rows",
]

log = logging.getLogger(__name__)

GroupBy = Literal["day", "wiki", "article", "key"]
CONTENT_FIELDS = ("passages", "chars", "citations", "attributions")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_requests (
    key_id TEXT NOT NULL,
    day TEXT NOT NULL,
    route TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day, route)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_content (
    key_id TEXT NOT NULL,
    day TEXT NOT NULL,
    route TEXT NOT NULL,
    wiki TEXT NOT NULL,
    page_id INTEGER NOT NULL,
    passages INTEGER NOT NULL DEFAULT 0,
    chars INTEGER NOT NULL DEFAULT 0,
    citations INTEGER NOT NULL DEFAULT 0,
    attributions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day, route, wiki, page_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_queries (
    id INTEGER PRIMARY KEY,
    key_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    route TEXT NOT NULL,
    query TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_queries_ts ON usage_queries (ts);
"""

_UPSERT_REQUESTS = (
    "INSERT INTO usage_requests (key_id, day, route, requests) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key_id, day, route) DO UPDATE SET requests = requests + excluded.requests"
)
_UPSERT_CONTENT = (
    "INSERT INTO usage_content (key_id, day, route, wiki, page_id, passages, chars, citations, "
    "attributions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key_id, day, route, wiki, page_id) DO UPDATE SET "
    "passages = passages + excluded.passages, chars = chars + excluded.chars, "
    "citations = citations + excluded.citations, "
    "attributions = attributions + excluded.attributions"
)

_RequestKey = tuple[str, str, str]  # key id, day, route
_ContentKey = tuple[str, str, str, str, int]  # key id, day, route, wiki, page id


def connect_usage_db(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """A connection to the usage database (WAL; the schema created when ``create``)."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.is_file():
        raise FileNotFoundError(f"no usage database at {path}")
    conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    if create:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
    return conn


def first_of_next_month(day: dt.date) -> dt.date:
    """When a monthly quota resets: the first day of the month after ``day`` (UTC)."""
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


class ServedText(Protocol):
    """A passage as served (:class:`indexer.store.PassageRecord` is one)."""

    @property
    def wiki(self) -> str: ...
    @property
    def page_id(self) -> int: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Served:
    """Content of one page served in one response."""

    wiki: str
    page_id: int
    passages: int = 0
    chars: int = 0
    citations: int = 0
    attributions: int = 0


@dataclass(frozen=True, slots=True)
class Quota:
    """A key's monthly limits (None: unlimited)."""

    requests: int | None = None
    passages: int | None = None


@dataclass(frozen=True, slots=True)
class MonthUsage:
    """A key's use this month (persisted + not yet flushed) and when the month ends."""

    requests: int
    passages: int
    resets: dt.date

    def remaining(self, quota: Quota) -> tuple[int | None, int | None]:
        """(requests, passages) left, None where unlimited, never below 0."""
        req = None if quota.requests is None else max(0, quota.requests - self.requests)
        pas = None if quota.passages is None else max(0, quota.passages - self.passages)
        return req, pas


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer of :meth:`UsageMeter.admit`: ``exceeded`` names the quota used up."""

    usage: MonthUsage
    exceeded: Literal["requests", "passages"] | None = None
    limit: int | None = None


@dataclass
class _Pending:
    requests: dict[_RequestKey, int] = field(default_factory=dict)
    content: dict[_ContentKey, list[int]] = field(default_factory=dict)
    queries: list[tuple[str, str, str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.requests or self.content or self.queries)


class UsageMeter:
    """In-memory usage counters flushed to SQLite by a background thread.

    ``path`` None makes a disabled meter: every method returns at once and records nothing
    (``WIKIRAG_METERING=false``). ``on_passages(key_id, n)`` is called for each recording of
    passages (the service counts them per key in Prometheus).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        flush_seconds: float = 1.0,
        store_queries: bool = False,
        query_retention_days: int = 30,
        on_passages: Callable[[str, int], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.enabled = path is not None
        self.flush_seconds = flush_seconds
        self.store_queries = store_queries
        self.query_retention_days = query_retention_days
        self._on_passages = on_passages
        self._clock = clock
        self._lock = threading.Lock()  # guards the counters below (held for microseconds)
        self._flush_lock = threading.Lock()  # one flush at a time
        self._pending = _Pending()
        self._month_name = ""
        self._month: dict[str, list[int]] = {}  # key id -> [requests, passages] this month
        self._day = ""
        self._day_ends = 0.0
        self._resets = dt.date.max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._last_prune = 0.0
        if path is not None:
            self._conn = connect_usage_db(path)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the flusher thread (and prune expired query text once)."""
        if not self.enabled or self._thread is not None:
            return
        self.prune_queries()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="usage-flusher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the flusher and flush what is left (graceful shutdown)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        try:
            self.flush()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
                if self._clock() - self._last_prune >= 60.0:
                    self.prune_queries()
            except Exception:  # never let the flusher die
                log.exception("usage flush failed; the counts stay in memory")

    # -- the hot path ------------------------------------------------------------------------

    def _today(self) -> str:
        """The UTC day (cached until midnight); call with the lock held."""
        now = self._clock()
        if now >= self._day_ends:
            day = dt.datetime.fromtimestamp(now, dt.UTC).date()
            self._day = day.isoformat()
            self._resets = first_of_next_month(day)
            self._day_ends = calendar.timegm((day + dt.timedelta(days=1)).timetuple())
            month = self._day[:7]
            if month != self._month_name:
                self._month_name, self._month = month, {}
        return self._day

    def _month_totals(self, key_id: str) -> list[int]:
        """The key's [requests, passages] this month; call with the lock held."""
        totals = self._month.get(key_id)
        if totals is None:  # first use in this process and month: the persisted totals
            totals = self._month[key_id] = list(self._persisted_month(key_id, self._month_name))
        return totals

    def _preload(self, key_id: str) -> None:
        """Read a key's persisted month totals *outside* the lock on its first use (a query
        that other keys' requests need not wait for). Whatever another thread loaded first
        wins: nothing of a key is counted before its totals are loaded, so both agree."""
        if key_id in self._month:
            return
        month = dt.datetime.fromtimestamp(self._clock(), dt.UTC).strftime("%Y-%m")
        totals = self._persisted_month(key_id, month)
        with self._lock:
            self._today()
            if self._month_name == month:
                self._month.setdefault(key_id, list(totals))

    def admit(self, key_id: str, route: str, quota: Quota | None = None) -> Admission:
        """Count a request unless a monthly quota of ``quota`` is used up (then nothing is
        counted and ``exceeded`` says which)."""
        if not self.enabled:
            return Admission(MonthUsage(0, 0, dt.date.max))
        self._preload(key_id)
        with self._lock:
            day = self._today()
            totals = self._month_totals(key_id)
            resets = self._resets
            if quota is not None:
                if quota.requests is not None and totals[0] >= quota.requests:
                    usage = MonthUsage(totals[0], totals[1], resets)
                    return Admission(usage, "requests", quota.requests)
                if quota.passages is not None and totals[1] >= quota.passages:
                    usage = MonthUsage(totals[0], totals[1], resets)
                    return Admission(usage, "passages", quota.passages)
            totals[0] += 1
            requests = self._pending.requests
            key = (key_id, day, route)
            requests[key] = requests.get(key, 0) + 1
            return Admission(MonthUsage(totals[0], totals[1], resets))

    def month_usage(self, key_id: str) -> MonthUsage:
        """The key's use this month, up to this moment."""
        if not self.enabled:
            return MonthUsage(0, 0, dt.date.max)
        with self._lock:
            self._today()
            totals = self._month_totals(key_id)
            return MonthUsage(totals[0], totals[1], self._resets)

    def record(self, key_id: str, route: str, served: Iterable[Served]) -> None:
        """Count content served from some pages (several items of a page add up)."""
        if not self.enabled:
            return
        passages = 0
        with self._lock:
            day = self._today()
            content = self._pending.content
            for item in served:
                key = (key_id, day, route, item.wiki, item.page_id)
                counts = content.get(key)
                if counts is None:
                    counts = content[key] = [0, 0, 0, 0]
                counts[0] += item.passages
                counts[1] += item.chars
                counts[2] += item.citations
                counts[3] += item.attributions
                passages += item.passages
            self._month_totals(key_id)[1] += passages
        if passages and self._on_passages is not None:
            self._on_passages(key_id, passages)

    def record_passages(self, key_id: str, route: str, records: Iterable[ServedText]) -> None:
        """Count passages served as they are: one passage and its characters each."""
        if not self.enabled:
            return
        passages = 0
        with self._lock:  # the loop of record(), inlined: this is the hot path of search
            day = self._today()
            content = self._pending.content
            for r in records:
                key = (key_id, day, route, r.wiki, r.page_id)
                counts = content.get(key)
                if counts is None:
                    content[key] = [1, len(r.text), 0, 0]
                else:
                    counts[0] += 1
                    counts[1] += len(r.text)
                passages += 1
            self._month_totals(key_id)[1] += passages
        if passages and self._on_passages is not None:
            self._on_passages(key_id, passages)

    def record_query(self, key_id: str, route: str, query: str, *, consent: bool = False) -> None:
        """Keep the query text, only if the key agreed (``consent``) or the service stores
        every key's queries."""
        if not self.enabled or not (consent or self.store_queries):
            return
        ts = dt.datetime.fromtimestamp(self._clock(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            self._pending.queries.append((key_id, ts, route, query))

    # -- persistence ---------------------------------------------------------------------------

    def _persisted_month(self, key_id: str, month: str) -> tuple[int, int]:
        assert self.path is not None
        start = f"{month}-01"
        end = first_of_next_month(dt.date.fromisoformat(start)).isoformat()
        # No flush can hold counts of this key: it is counted only once it is loaded.
        with closing(sqlite3.connect(self.path, timeout=30.0)) as conn:
            requests = conn.execute(
                "SELECT COALESCE(SUM(requests), 0) FROM usage_requests "
                "WHERE key_id = ? AND day >= ? AND day < ?",
                (key_id, start, end),
            ).fetchone()[0]
            passages = conn.execute(
                "SELECT COALESCE(SUM(passages), 0) FROM usage_content "
                "WHERE key_id = ? AND day >= ? AND day < ?",
                (key_id, start, end),
            ).fetchone()[0]
        return int(requests), int(passages)

    def flush(self) -> int:
        """Write what accumulated in one transaction; returns the rows upserted. On a
        database error the counts go back into memory (to be retried) and it re-raises."""
        if self._conn is None:
            return 0
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, _Pending()
            if not pending:
                return 0
            try:
                with self._conn:
                    self._conn.executemany(
                        _UPSERT_REQUESTS, [(*k, n) for k, n in pending.requests.items()]
                    )
                    self._conn.executemany(
                        _UPSERT_CONTENT, [(*k, *c) for k, c in pending.content.items()]
                    )
                    self._conn.executemany(
                        "INSERT INTO usage_queries (key_id, ts, route, query) VALUES (?, ?, ?, ?)",
                        pending.queries,
                    )
            except sqlite3.Error:
                self._restore(pending)
                raise
            return len(pending.requests) + len(pending.content) + len(pending.queries)

    def _restore(self, pending: _Pending) -> None:
        with self._lock:
            for key, n in pending.requests.items():
                self._pending.requests[key] = self._pending.requests.get(key, 0) + n
            for ckey, counts in pending.content.items():
                now = self._pending.content.setdefault(ckey, [0, 0, 0, 0])
                for i, n in enumerate(counts):
                    now[i] += n
            self._pending.queries[:0] = pending.queries

    def prune_queries(self) -> int:
        """Delete stored query text older than the retention period; returns how many."""
        if self._conn is None:
            return 0
        self._last_prune = self._clock()
        cutoff = dt.datetime.fromtimestamp(self._clock(), dt.UTC) - dt.timedelta(
            days=self.query_retention_days
        )
        with self._flush_lock, self._conn:
            cursor = self._conn.execute(
                "DELETE FROM usage_queries WHERE ts < ?", (cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"),)
            )
        return cursor.rowcount


# -- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One row of a usage report; the grouping columns not used are None."""

    key_id: str | None
    day: str | None
    wiki: str | None
    page_id: int | None
    requests: int | None
    passages: int
    chars: int
    citations: int
    attributions: int

    def as_dict(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "day": self.day,
            "wiki": self.wiki,
            "page_id": self.page_id,
            "requests": self.requests,
            "passages": self.passages,
            "chars": self.chars,
            "citations": self.citations,
            "attributions": self.attributions,
        }


_GROUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "day": ("day",),
    "wiki": ("wiki",),
    "article": ("wiki", "page_id"),
    "key": ("key_id",),
}


@contextmanager
def _reader(path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect_usage_db(path, create=False)
    try:
        yield conn
    finally:
        conn.close()


def _where(key_id: str | None, start: dt.date, end: dt.date) -> tuple[str, list[object]]:
    clause = "day >= ? AND day <= ?"
    params: list[object] = [start.isoformat(), end.isoformat()]
    if key_id is not None:
        clause, params = "key_id = ? AND " + clause, [key_id, *params]
    return clause, params


def usage_rows(
    path: Path,
    group_by: GroupBy,
    start: dt.date,
    end: dt.date,
    *,
    key_id: str | None = None,
    limit: int | None = None,
) -> list[UsageRow]:
    """Usage from ``start`` to ``end`` (inclusive, UTC days) grouped by day, wiki, article or
    key; ``key_id`` None means every key. Requests have no wiki, so ``requests`` is None when
    grouping by wiki or article. Articles come most-served first (then by wiki, page id);
    days, wikis and keys in order."""
    columns = _GROUP_COLUMNS[group_by]
    where, params = _where(key_id, start, end)
    cols = ", ".join(columns)
    sums = ", ".join(f"SUM({f})" for f in CONTENT_FIELDS)
    order = "SUM(passages) DESC, " + cols if group_by == "article" else cols
    sql = f"SELECT {cols}, {sums} FROM usage_content WHERE {where} GROUP BY {cols} ORDER BY {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with _reader(path) as conn:
        content = {tuple(r[: len(columns)]): r[len(columns) :] for r in conn.execute(sql, params)}
        requests: dict[tuple[object, ...], int] = {}
        if group_by in ("day", "key"):
            rsql = f"SELECT {cols}, SUM(requests) FROM usage_requests WHERE {where} GROUP BY {cols}"
            requests = {tuple(r[:-1]): int(r[-1]) for r in conn.execute(rsql, params)}
    keys = list(content)
    if group_by in ("day", "key"):  # days or keys with requests but no content
        keys = sorted(set(keys) | set(requests), key=lambda k: str(k[0]))
    rows = []
    for key in keys:
        values = dict(zip(columns, key, strict=True))
        counts = content.get(key, (0, 0, 0, 0))
        rows.append(
            UsageRow(
                key_id=_opt_str(values.get("key_id", key_id)),
                day=_opt_str(values.get("day")),
                wiki=_opt_str(values.get("wiki")),
                page_id=None if values.get("page_id") is None else int(str(values["page_id"])),
                requests=requests.get(key, 0) if group_by in ("day", "key") else None,
                passages=int(counts[0]),
                chars=int(counts[1]),
                citations=int(counts[2]),
                attributions=int(counts[3]),
            )
        )
    return rows


def requests_by_route(
    path: Path, start: dt.date, end: dt.date, *, key_id: str | None = None
) -> dict[str, int]:
    """Requests per route template from ``start`` to ``end`` (inclusive)."""
    where, params = _where(key_id, start, end)
    with _reader(path) as conn:
        rows = conn.execute(
            f"SELECT route, SUM(requests) FROM usage_requests WHERE {where} GROUP BY route "
            "ORDER BY route",
            params,
        ).fetchall()
    return {str(route): int(n) for route, n in rows}


def stored_queries(path: Path, *, key_id: str | None = None) -> list[tuple[str, str, str, str]]:
    """Stored query text as (key id, time, route, query), oldest first."""
    with _reader(path) as conn:
        sql = "SELECT key_id, ts, route, query FROM usage_queries"
        params: list[object] = []
        if key_id is not None:
            sql, params = sql + " WHERE key_id = ?", [key_id]
        rows = conn.execute(sql + " ORDER BY id", params).fetchall()
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def usage_report(
    path: Path,
    start: dt.date,
    end: dt.date,
    *,
    key_id: str | None = None,
    top: int = 10,
    titles: Callable[[str, int], str | None] | None = None,
) -> list[dict[str, object]]:
    """The operator's report from ``start`` to ``end`` (inclusive): per key (all keys, or
    ``key_id``), its totals, requests per route, use per wiki and its ``top`` most served
    articles (with ``titles(wiki, page_id)`` when given). Keys sorted by id."""
    where, params = _where(key_id, start, end)
    sums = ", ".join(f"SUM({f})" for f in CONTENT_FIELDS)
    keys: dict[str, dict[str, object]] = {}

    def entry(kid: object) -> dict[str, object]:
        return keys.setdefault(
            str(kid),
            {"key_id": str(kid), "requests": 0, "requests_by_route": {},
             **dict.fromkeys(CONTENT_FIELDS, 0), "wikis": [], "top_articles": []},
        )  # fmt: skip

    with _reader(path) as conn:
        for kid, route, n in conn.execute(
            f"SELECT key_id, route, SUM(requests) FROM usage_requests WHERE {where} "
            "GROUP BY key_id, route ORDER BY key_id, route",
            params,
        ):
            item = entry(kid)
            routes = item["requests_by_route"]
            assert isinstance(routes, dict)
            routes[str(route)] = int(n)
            item["requests"] = int(str(item["requests"])) + int(n)
        for kid, wiki, *counts in conn.execute(
            f"SELECT key_id, wiki, {sums} FROM usage_content WHERE {where} "
            "GROUP BY key_id, wiki ORDER BY key_id, wiki",
            params,
        ):
            item = entry(kid)
            wikis = item["wikis"]
            assert isinstance(wikis, list)
            wikis.append({"wiki": str(wiki), **_counts(counts)})
            for name, value in _counts(counts).items():
                item[name] = int(str(item[name])) + value
        for kid, wiki, page_id, *counts in conn.execute(
            f"SELECT key_id, wiki, page_id, p, c, ci, a FROM (SELECT key_id, wiki, page_id, "
            f"SUM(passages) AS p, SUM(chars) AS c, SUM(citations) AS ci, SUM(attributions) AS a, "
            f"ROW_NUMBER() OVER (PARTITION BY key_id ORDER BY SUM(passages) DESC, SUM(chars) "
            f"DESC, wiki, page_id) AS rank FROM usage_content WHERE {where} "
            "GROUP BY key_id, wiki, page_id) WHERE rank <= ? ORDER BY key_id, rank",
            [*params, top],
        ):
            articles = entry(kid)["top_articles"]
            assert isinstance(articles, list)
            title = titles(str(wiki), int(page_id)) if titles is not None else None
            articles.append({"wiki": str(wiki), "page_id": int(page_id), "title": title,
                             **_counts(counts)})  # fmt: skip
    return [keys[k] for k in sorted(keys)]


def _counts(values: Iterable[object]) -> dict[str, int]:
    return {name: int(str(v)) for name, v in zip(CONTENT_FIELDS, values, strict=True)}
