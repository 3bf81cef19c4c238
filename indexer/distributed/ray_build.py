"""The build on Ray: ``wikirag build --engine ray [--ray-address ADDR]``.

The same pipeline as :func:`indexer.build.build_index`, cut into work units
(:mod:`indexer.distributed.units`) and run as one streamed Ray Data job:

1. **prepare** — a ``map`` task per unit (1 CPU; a task whose worker dies is retried up to
   ``max_retries`` times): read, clean and cut the unit into its shard's items file;
2. **embed** — ``map_batches`` over an actor pool (``ActorPoolStrategy``; Ray Data restarts
   an actor that dies and retries its batch): each actor loads the model once (on a GPU when
   the cluster has GPUs: ``num_gpus``) and embeds whole shards into their vectors files,
   through the index's embedding cache. It starts on the first shards while later units are
   still being prepared;
3. **merge** (driver) — check that every unit left exactly one complete shard, replay the
   shards into the SQLite store in unit order (the local build's ids and rows), build the
   lexical index shard by shard and the FAISS index (trained on the local build's sample,
   filled shard by shard from memory-mapped vectors), and publish the generation with the
   same layout and manifest as a local build, plus ``"engine": "ray"`` and ``"shards"``.

The shards live in the work directory of the new generation (removed before it is
published), so on a multi-node cluster the index directory must be on a file system that
every node mounts at the same path (NFS, a cluster file system); on one machine any directory
works. This module is the only one that imports ``ray`` (install ``wikirag[ray]``).

Usage::

    >>> report = build_index_ray([Path("data/samples/wme/enwiki_namespace_0.tar.gz")],
    ...                          Path("var/index"), BuildOptions(),
    ...                          RayOptions(num_cpus=2))                # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import ray
import ray.data
import ray.exceptions

from indexer.build import (
    BuildError,
    BuildOptions,
    BuildReport,
    build_manifest,
    compare_generations,
    current_or_none,
)
from indexer.distributed.shards import (
    SHARD_DIR,
    FailOnce,
    ShardSummary,
    check_shards,
    count_attempt,
    embed_unit,
    fill_indexes,
    merge_shards,
    prepare_unit,
)
from indexer.distributed.units import SplitOptions, WorkUnit, plan_units
from indexer.embedding import DEFAULT_MODEL, EmbedStats, ModelInfo, open_embedder
from indexer.generation import DENSE_FILE, STORE_FILE, IndexLayout
from indexer.ingest import IngestOptions
from indexer.sources.xml_dump import SourceError
from indexer.store import PassageStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RayOptions:
    """Where and how the build runs on Ray.

    ``address`` is a running cluster (``ray://…`` or ``host:port``, or ``"auto"``); None
    starts a local Ray runtime with ``num_cpus`` CPUs (default: all), without dashboard.
    ``embed_actors`` is the size of the embedding actor pool (default: one per GPU, or one
    when the cluster has none); ``num_gpus_per_embedder`` the GPUs each actor takes (default:
    1 when the cluster has GPUs, else 0 — CPU actors take ``cpus_per_embedder`` CPUs and as
    many torch threads). ``embedding_cache`` False keeps the workers away from the index's
    SQLite embedding cache (for network file systems without reliable locking: every passage
    is then embedded). ``max_retries`` is how often a unit is retried after it killed its
    worker (task or actor: Ray Data retries those without end) before the build fails.
    ``fail_once`` is test-only fault injection (:class:`FailOnce`).

    Every node needs the same wikirag (and model) installed as the driver.
    """

    address: str | None = None
    num_cpus: int | None = None
    embed_actors: int | None = None
    num_gpus_per_embedder: float | None = None
    cpus_per_embedder: int = 1
    split: SplitOptions = SplitOptions()
    max_retries: int = 3
    embedding_cache: bool = True
    fail_once: FailOnce | None = None


def build_index_ray(
    sources: Sequence[Path],
    index_dir: Path,
    options: BuildOptions = BuildOptions(),
    ray_options: RayOptions = RayOptions(),
) -> BuildReport:
    """Build and publish a generation of ``index_dir`` from ``sources`` on Ray.

    Uses the Ray runtime already initialised in this process when there is one; otherwise
    connects to ``ray_options.address`` or starts a local runtime (shut down afterwards)."""
    missing = [str(s) for s in sources if not Path(s).is_file()]
    if missing:
        raise BuildError(f"source file(s) not found: {', '.join(missing)}")
    layout = IndexLayout(index_dir)
    report = BuildReport()
    started_ray = _ensure_ray(ray_options)
    try:
        with layout.lock():
            layout.cleanup_incomplete()
            previous = current_or_none(layout)
            with layout.new_generation() as work:
                shard_dir = work.path / SHARD_DIR
                shard_dir.mkdir()
                summaries, info = _run_workers(
                    sources, shard_dir, layout, options, ray_options, report
                )
                store = PassageStore(work.path / STORE_FILE)
                try:
                    started = time.perf_counter()
                    report.ingest = merge_shards(
                        sources, shard_dir, summaries, store, options.ingest
                    )
                    report.ingest.seconds = time.perf_counter() - started
                    report.stage_seconds["merge"] = report.ingest.seconds
                    started = time.perf_counter()
                    dense = fill_indexes(
                        store, shard_dir, summaries, work.path, options, report, info.dimension
                    )
                    dense.save(work.path / DENSE_FILE)
                    report.dense_params = dict(dense.params)
                    report.stage_seconds["indexes"] = time.perf_counter() - started
                    if previous is not None:
                        report.changes = compare_generations(previous, store)
                    store.finalize()
                    counts = store.counts()
                finally:
                    store.close()
                shutil.rmtree(shard_dir)
                manifest = build_manifest(sources, info, options, report, counts).replace(
                    engine="ray", shards=tuple(s.manifest_entry() for s in summaries)
                )
                generation = layout.publish(work, manifest)
            report.generation = generation.generation
            report.path = str(generation.path)
            report.pruned = [p.name for p in layout.prune(options.keep_generations)]
    finally:
        if started_ray:
            ray.shutdown()
    return report


def _ensure_ray(options: RayOptions) -> bool:
    """Initialise Ray unless it already is; True when this call did it."""
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if options.address is not None:
        ray.init(address=options.address, **quiet)
    else:
        # "local": a runtime of our own, even where another cluster runs on this machine.
        ray.init(address="local", num_cpus=options.num_cpus, include_dashboard=False, **quiet)
    return True


def _run_workers(
    sources: Sequence[Path],
    shard_dir: Path,
    layout: IndexLayout,
    options: BuildOptions,
    ray_options: RayOptions,
    report: BuildReport,
) -> tuple[list[ShardSummary], ModelInfo]:
    """Prepare and embed every work unit on the cluster; returns the checked shards."""
    started = time.perf_counter()
    units = plan_units(sources, ray_options.split)
    layout.cache_dir.mkdir(parents=True, exist_ok=True)
    summaries, info = _pipeline(units, shard_dir, layout, options, ray_options)
    report.stage_seconds["workers"] = time.perf_counter() - started
    check_shards(shard_dir, summaries, units)
    report.embedding = _sum_stats(summaries)
    return summaries, info


def _pipeline(
    units: list[WorkUnit],
    shard_dir: Path,
    layout: IndexLayout,
    options: BuildOptions,
    ray_options: RayOptions,
) -> tuple[list[ShardSummary], ModelInfo]:
    """One Ray Data job, streamed: prepare tasks feed the embedding actor pool, so the
    actors start on the first shards while later units are still being parsed."""
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    gpus = float(resources.get("GPU", 0))
    per_actor = ray_options.num_gpus_per_embedder
    if per_actor is None:
        per_actor = 1.0 if gpus >= 1 else 0.0
    actors = ray_options.embed_actors or (max(1, int(gpus // per_actor)) if per_actor else 1)
    needed = actors * ray_options.cpus_per_embedder + 1
    if float(resources.get("CPU", 0)) < needed:
        raise BuildError(
            f"the Ray cluster has {resources.get('CPU', 0):g} CPU(s); this build needs "
            f"{needed}: {actors} embedding actor(s) of {ray_options.cpus_per_embedder} CPU "
            "and 1 for parsing (use fewer --embed-actors or more --ray-cpus)"
        )
    log.info(
        "%d work units; embedding with %d actor(s), %g GPU each", len(units), actors, per_actor
    )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = options.progress
    if not log.isEnabledFor(logging.DEBUG):  # Ray Data logs each execution at INFO
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    dataset = ray.data.from_items(
        [{"unit": json.dumps(u.as_dict())} for u in units], override_num_blocks=len(units)
    )
    prepared = dataset.map(
        partial(
            _prepare_row,
            options=replace(options.ingest, progress=False),
            shard_dir=shard_dir,
            fail_once=ray_options.fail_once,
            max_attempts=ray_options.max_retries + 1,
        ),
        num_cpus=1,  # Ray Data retries a task whose worker died; _prepare_row bounds it
    )
    remote_args: dict[str, Any] = {"num_cpus": ray_options.cpus_per_embedder}
    if per_actor:
        remote_args["num_gpus"] = per_actor
    rows = prepared.map_batches(
        _ShardEmbedder,
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        fn_constructor_kwargs={
            "model": options.model or DEFAULT_MODEL,
            "device": "cuda" if per_actor else "cpu",
            "threads": ray_options.cpus_per_embedder,
            "options": options,
            "shard_dir": shard_dir,
            "cache_path": layout.embedding_cache_path if ray_options.embedding_cache else None,
            "fail_once": ray_options.fail_once,
            "max_attempts": ray_options.max_retries + 1,
        },
        **remote_args,
    )
    by_unit: dict[str, ShardSummary] = {}
    info: ModelInfo | None = None
    for row in rows.iter_rows():
        if row["error"]:  # stops the job; a local build fails on a bad source the same way
            error = SourceError if row["error_type"] == "source" else BuildError
            raise error(str(row["error"]))
        summary = ShardSummary.from_json(str(row["summary"]))
        by_unit[summary.unit_id] = summary  # a retried batch reports the same shard again
        info = ModelInfo(**json.loads(str(row["info"])))
    missing = [u.unit_id for u in units if u.unit_id not in by_unit]
    if missing or info is None:
        raise BuildError(f"no shard for work unit(s) {', '.join(missing) or '(all)'}")
    return [by_unit[u.unit_id] for u in units], info


def _prepare_row(
    row: dict[str, Any],
    *,
    options: IngestOptions,
    shard_dir: Path,
    fail_once: FailOnce | None,
    max_attempts: int,
) -> dict[str, Any]:
    """A Ray Data task: read, clean and cut one work unit into its shard. A problem with the
    source itself travels as a row (``error``): Ray Data would keep only its text."""
    unit = WorkUnit(**json.loads(str(row["unit"])))
    if count_attempt(shard_dir, "prepare", unit.unit_id) > max_attempts:
        return _error_row("build", f"{unit.describe()} killed its worker {max_attempts} times")
    try:
        summary = prepare_unit(unit, options, shard_dir, fail_once)
    except SourceError as exc:
        return _error_row("source", str(exc))
    return {"summary": summary.to_json(), "error": "", "error_type": ""}


def _error_row(kind: str, message: str) -> dict[str, Any]:
    return {"summary": "", "error": message, "error_type": kind}


class _ShardEmbedder:
    """A Ray Data actor: loads the model once, then embeds one shard per batch row."""

    def __init__(
        self,
        model: str,
        device: str,
        threads: int,
        options: BuildOptions,
        shard_dir: Path,
        cache_path: Path | None,
        fail_once: FailOnce | None,
        max_attempts: int,
    ) -> None:
        self.embedder = open_embedder(model, device=device, threads=threads)
        self.embedder.load()
        self.options = options
        self.shard_dir = shard_dir
        # Without the shared cache: a private one, which only saves repeated texts.
        self.cache_path = cache_path or Path(tempfile.mkdtemp(prefix="wikirag-embed-")) / "c.sqlite"
        self.fail_once = fail_once
        self.max_attempts = max_attempts

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"summary": [], "error": [], "error_type": [], "info": []}
        info = json.dumps(asdict(self.embedder.info))
        for text, error, kind in zip(
            batch["summary"], batch["error"], batch["error_type"], strict=True
        ):
            row = {"summary": str(text), "error": str(error), "error_type": str(kind)}
            if not error:
                row = self._embed(ShardSummary.from_json(str(text)))
            for key, value in row.items():
                out[key].append(value)
            out["info"].append(info)
        return out

    def _embed(self, summary: ShardSummary) -> dict[str, str]:
        if count_attempt(self.shard_dir, "embed", summary.unit_id) > self.max_attempts:
            message = (
                f"{summary.unit.describe()} killed its embedding actor {self.max_attempts} times"
            )
            return _error_row("build", message)
        done = embed_unit(
            summary,
            self.shard_dir,
            self.embedder,
            self.options,
            cache_path=self.cache_path,
            fail_once=self.fail_once,
        )
        return {"summary": done.to_json(), "error": "", "error_type": ""}


def _sum_stats(summaries: Sequence[ShardSummary]) -> EmbedStats:
    total = EmbedStats()
    for summary in summaries:
        stats = summary.embedding
        total.hits += int(stats.get("hits", 0))
        total.misses += int(stats.get("misses", 0))
        total.encoded += int(stats.get("encoded", 0))
        total.seconds += float(stats.get("seconds", 0.0))
        total.encode_seconds += float(stats.get("encode_seconds", 0.0))
    return total
