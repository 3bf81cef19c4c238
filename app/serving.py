"""Serving one published generation at a time, switching to a newly published one without
dropping a request, and running rebuilds in the background.

Hot reload
----------
The service holds one :class:`ServingIndex` (the opened store, FAISS and tantivy indexes of a
generation, with its retriever and citation resolver). :meth:`Reloader.reload` resolves the
index directory's ``current`` symlink; when it names another generation than the one served,
it opens that generation completely, runs a warm-up query through it (dense and lexical), and
only then replaces the served reference — one attribute assignment, atomic for every reader.
A request takes the reference once, when it starts, and uses that object to the end, so an
in-flight request finishes on the generation it began with. The replaced generation is closed
after ``grace_seconds`` (see :meth:`Reloader.reap`).

Three things call :meth:`Reloader.reload`: a background task that polls the symlink every
``reload_poll_seconds`` (the build publishes by swapping the symlink, so nothing else needs
to tell the service), ``SIGHUP``, and ``POST /v1/admin/reload``. Reloads are serialised.
A generation that fails to open (another embedding model, a corrupt file) is logged and not
served — the previous one stays — and is not retried until the symlink changes again or a
reload is forced. At start-up, when the generation ``current`` names cannot be served (a
missing or corrupt file), the newest older generation in ``generations/`` that opens and
answers the probe is served instead; :attr:`Reloader.fallback` (shown by ``/readyz`` and
``GET /v1/index``) says which and why, and a ``FALLBACK`` line is logged. With no good
older generation the service stays not ready and ``/readyz`` names the file at fault.

Rebuilds
--------
:class:`JobManager` runs one job at a time in a background thread and keeps the last jobs'
states (``queued`` → ``running`` → ``succeeded`` | ``failed``) for status queries.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.attribution.citations import CitationResolver
from app.retrieval.ranking import (
    RetrievalDefaults,
    SearchHit,
    SearchMode,
    SearchRequest,
    resolve_defaults,
)
from app.retrieval.retriever import HybridRetriever, LoadedIndex
from app.settings import Settings
from indexer.embedding import EmbeddingModel
from indexer.generation import Generation, IndexLayout
from indexer.manifest import Manifest
from indexer.models import SiteInfo

log = logging.getLogger(__name__)

PROBE_QUERY = "encyclopedia"


@dataclass
class ServingIndex:
    """One opened generation and everything that answers requests from it."""

    generation: Generation
    index: LoadedIndex
    retriever: HybridRetriever
    citations: CitationResolver
    sites: dict[str, SiteInfo]
    languages: frozenset[str]
    loaded_at: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return self.generation.generation

    def probe(self) -> list[SearchHit]:
        """A real hybrid query through the model, FAISS, tantivy and the store."""
        return self.retriever.search(SearchRequest(PROBE_QUERY, k=1, mode=SearchMode.HYBRID))

    def close(self) -> None:
        self.index.close()


def configured_defaults(settings: Settings) -> tuple[RetrievalDefaults, dict[str, Any]]:
    """The fusion settings of ``settings``: all of them (the fallback when an index recorded
    none) and those set explicitly by a flag or ``WIKIRAG_*`` (which beat what it recorded)."""
    configured = settings.retrieval_defaults()
    explicit = {n: v for n, v in configured.items() if n in settings.model_fields_set}
    return resolve_defaults(configured), explicit


def retrieval_defaults(manifest: Manifest, settings: Settings) -> RetrievalDefaults:
    """Fusion settings: those set explicitly (flag or ``WIKIRAG_*``) win, then the ones the
    build recorded in the manifest, then the configured defaults."""
    return resolve_defaults(manifest.retrieval, *configured_defaults(settings))


def open_serving(
    generation: Generation, embedder: EmbeddingModel, settings: Settings
) -> ServingIndex:
    """Open ``generation`` for serving and warm it up; raises when it cannot serve."""
    index = LoadedIndex.open_generation(generation, embedder.info)
    try:
        retriever = HybridRetriever(
            index,
            embedder,
            retrieval_defaults(index.manifest, settings),
            encode_cache_size=settings.encode_cache_size,
        )
        sites = {site.wiki: site for site in index.store.wikis()}
        serving = ServingIndex(
            generation=generation,
            index=index,
            retriever=retriever,
            citations=CitationResolver(index.store),
            sites=sites,
            languages=frozenset(site.language for site in sites.values()),
        )
        serving.probe()  # warm-up: the first real query pays for caches and page-ins
    except BaseException:
        index.close()
        raise
    return serving


@dataclass(frozen=True, slots=True)
class Fallback:
    """The service serves ``serving`` because ``wanted`` (what ``current`` names) cannot be
    served: ``reason``, caused by ``file`` when one file is at fault."""

    wanted: str
    serving: str
    reason: str
    file: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "wanted": self.wanted,
            "serving": self.serving,
            "reason": self.reason,
            "file": self.file,
        }


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """What one :meth:`Reloader.reload` did."""

    changed: bool
    generation: str | None
    previous: str | None
    seconds: float
    error: str | None = None


class Reloader:
    """Holds the served generation and replaces it when a new one is published."""

    def __init__(
        self,
        index_dir: Path,
        embedder: EmbeddingModel,
        settings: Settings,
        *,
        on_swap: Callable[[ServingIndex], None] | None = None,
    ) -> None:
        self.layout = IndexLayout(index_dir)
        self.embedder = embedder
        self.settings = settings
        self.grace_seconds = settings.reload_grace_seconds
        self._on_swap = on_swap
        self._current: ServingIndex | None = None
        self._lock = threading.Lock()  # one reload at a time
        self._retired_lock = threading.Lock()
        self._retired: list[tuple[float, ServingIndex]] = []
        self._failed_target: Path | None = None
        self.last_error: str | None = "the index has not been loaded yet"
        self.last_error_file: str | None = None  # the file at fault, when one is
        self.fallback: Fallback | None = None  # set while an older generation stands in
        self.reloads = 0

    @property
    def current(self) -> ServingIndex | None:
        """The generation to answer from; read it once per request."""
        return self._current

    @property
    def not_ready_reason(self) -> str | None:
        """Why nothing is served (None when a generation is)."""
        return None if self._current is not None else self.last_error

    def _target(self) -> Path | None:
        link = self.layout.current_link
        if not link.is_symlink():
            return None
        return (link.parent / os.readlink(link)).resolve()

    def reload(self, *, force: bool = False) -> ReloadOutcome:
        """Serve the generation ``current`` names if it is not the one served (blocking)."""
        started = time.perf_counter()
        with self._lock:
            previous = self._current
            prev_name = previous.name if previous is not None else None
            target = self._target()
            if target is None:
                self.last_error = (
                    f"{self.layout.root} has no published index; build one with "
                    f"`wikirag build SOURCE… --index {self.layout.root}`"
                )
                if previous is None:
                    log.error("not ready: %s", self.last_error)
                else:
                    log.warning("%s; still serving %s", self.last_error, prev_name)
                return ReloadOutcome(False, prev_name, prev_name, 0.0, self.last_error)
            unchanged = previous is not None and previous.generation.path.resolve() == target
            if unchanged:
                self.fallback = None  # `current` names the served generation (again)
            if not force and (unchanged or target == self._failed_target):
                return ReloadOutcome(False, prev_name, prev_name, 0.0)
            fallback: Fallback | None = None
            try:
                serving = open_serving(self.layout.load(target), self.embedder, self.settings)
            except Exception as exc:  # ModelMismatch, IndexError_, StoreError, faiss, I/O…
                self._failed_target = target
                self.last_error = f"generation {target.name} cannot be served: {exc}"
                bad_file = getattr(exc, "path", None)
                self.last_error_file = str(bad_file) if bad_file is not None else None
                if previous is not None:
                    log.error("%s; still serving %s", self.last_error, prev_name)
                    if previous.generation.path.resolve() != target:
                        self.fallback = Fallback(
                            target.name, previous.name, self.last_error, self.last_error_file
                        )
                    return ReloadOutcome(
                        False, prev_name, prev_name, time.perf_counter() - started, self.last_error
                    )
                found = self._open_older(target)
                if found is None:
                    log.error("not ready: %s", self.last_error)
                    return ReloadOutcome(
                        False, None, None, time.perf_counter() - started, self.last_error
                    )
                serving = found
                fallback = Fallback(
                    target.name, serving.name, self.last_error, self.last_error_file
                )
                log.warning(
                    "FALLBACK: %s; serving the previous generation %s instead",
                    self.last_error,
                    serving.name,
                )
            else:
                self._failed_target = None
                self.last_error = None
                self.last_error_file = None
            self._current = serving
            self.fallback = fallback
            self.reloads += 1
            if previous is not None:
                with self._retired_lock:
                    self._retired.append((time.monotonic() + self.grace_seconds, previous))
        seconds = time.perf_counter() - started
        log.info(
            "serving generation %s (%d passages; opened and warmed up in %.2fs)%s",
            serving.name,
            serving.index.manifest.counts.indexed_passages,
            seconds,
            f", replacing {prev_name}" if prev_name else "",
        )
        if self._on_swap is not None:
            self._on_swap(serving)
        return ReloadOutcome(True, serving.name, prev_name, seconds)

    def _open_older(self, failed: Path) -> ServingIndex | None:
        """The newest older published generation that opens and answers the probe (used
        when the one ``current`` names cannot be served and nothing is served yet)."""
        for path in reversed(self.layout.published()):
            if path.resolve() == failed:
                continue
            try:
                return open_serving(self.layout.load(path), self.embedder, self.settings)
            except Exception as exc:
                log.error("previous generation %s cannot be served either: %s", path.name, exc)
        return None

    def refresh_updates(self) -> bool:
        """Make incremental updates of the served generation visible (its tantivy searcher
        and delta dense index are reloaded when its ``updates.json`` version changed)."""
        serving = self._current
        if serving is None:
            return False
        try:
            changed = serving.index.refresh_updates()
        except Exception as exc:  # a half-visible update must not take the service down
            log.error("could not load the updates of %s: %s", serving.name, exc)
            return False
        if changed:
            serving.retriever.invalidate()
            log.info(
                "generation %s: incremental update %d now served",
                serving.name,
                serving.index.updates_version,
            )
        return changed

    def reap(self, *, now: float | None = None) -> int:
        """Close replaced generations whose grace period is over; returns how many."""
        moment = time.monotonic() if now is None else now
        with self._retired_lock:
            due = [s for deadline, s in self._retired if deadline <= moment]
            self._retired = [(d, s) for d, s in self._retired if d > moment]
        for serving in due:
            serving.close()
            log.info("closed replaced generation %s", serving.name)
        return len(due)

    def close(self) -> None:
        """Close everything (at shutdown)."""
        with self._lock, self._retired_lock:
            retired = [s for _, s in self._retired]
            self._retired = []
            current, self._current = self._current, None
        for serving in [*retired, *([current] if current else [])]:
            serving.close()


# -- background jobs ----------------------------------------------------------------------


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Job:
    """A snapshot of one background job."""

    job_id: str
    kind: str
    state: JobState
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    stage: str = "queued"
    result: dict[str, Any] | None = None
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING)


class JobConflict(Exception):
    """A job is already queued or running."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"{job.kind} job {job.job_id} is {job.state.value}")
        self.job = job


JobWork = Callable[[Callable[[str], None]], dict[str, Any]]


class JobManager:
    """Runs one job at a time in a thread; keeps the last ``history`` jobs."""

    def __init__(self, history: int = 50) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._history = history
        self._threads: list[threading.Thread] = []

    def submit(self, kind: str, work: JobWork, params: dict[str, Any] | None = None) -> Job:
        """Start ``work(set_stage)`` in a thread; :class:`JobConflict` if a job is active."""
        with self._lock:
            active = next((j for j in self._jobs.values() if j.active), None)
            if active is not None:
                raise JobConflict(active)
            job = Job(uuid.uuid4().hex, kind, JobState.QUEUED, time.time(), params=params or {})
            self._jobs[job.job_id] = job
            while len(self._jobs) > self._history:
                oldest = next(j for j in self._jobs.values() if not j.active)
                del self._jobs[oldest.job_id]
        thread = threading.Thread(
            target=self._run, args=(job.job_id, work), name=f"{kind}-{job.job_id[:8]}", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return job

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            self._jobs[job_id] = replace(self._jobs[job_id], **changes)

    def _run(self, job_id: str, work: JobWork) -> None:
        self._update(job_id, state=JobState.RUNNING, started_at=time.time(), stage="starting")
        log.info("job %s started", job_id)
        try:
            result = work(lambda stage: self._update(job_id, stage=stage))
        except Exception as exc:
            log.exception("job %s failed", job_id)
            self._update(
                job_id,
                state=JobState.FAILED,
                finished_at=time.time(),
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        self._update(
            job_id, state=JobState.SUCCEEDED, finished_at=time.time(), stage="done", result=result
        )
        log.info("job %s succeeded", job_id)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)

    def active(self) -> Job | None:
        with self._lock:
            return next((j for j in self._jobs.values() if j.active), None)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the job threads (tests, shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)
