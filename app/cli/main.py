"""The ``wikirag`` command line: one entry point, one subcommand per operator task.

Each subcommand is a thin layer over a library object (the ingestion pipeline, the store, the
index builder, the retriever); flags override ``WIKIRAG_*`` environment settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from app.cli.common import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SKIPPED,
    EXIT_USAGE,
    CommandError,
    Handler,
    license_rule,
    open_retriever,
    positive_int,
    probability,
    retrieval_settings,
    settings_from_args,
    whole_number,
)
from app.settings import Settings
from indexer.errors import WikiragError


def _add_ingest_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wiki",
        help="wiki id (dbname, e.g. enwiki) for XML exports that have no <siteinfo>",
    )
    parser.add_argument(
        "--namespace",
        dest="namespaces",
        type=int,
        action="append",
        help="namespace to ingest (repeatable; default: 0, articles only)",
    )
    parser.add_argument("--max-words", type=int, help="most words per passage (default 100)")
    parser.add_argument(
        "--overlap-words", type=int, help="words repeated between passages (default 0)"
    )
    parser.add_argument(
        "--license-rule",
        dest="license_rule",
        action="append",
        type=license_rule,
        metavar="WIKI=RULE",
        help="license of a wiki's XML export revisions: 'auto' (CC BY-SA 3.0 before "
        "2023-06-07, 4.0 from then on; the default) or an SPDX id (CC-BY-SA-4.0)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


INGEST_SETTING_NAMES = ("wiki", "namespaces", "max_words", "overlap_words", "license_rules")


def _ingest_settings(args: argparse.Namespace, more_names: Sequence[str] = ()) -> Settings:
    """Settings from the environment and the ingest flags plus ``more_names``; every flag
    given (0 and 0.0 included) is validated like its WIKIRAG_* variable."""
    return settings_from_args(args, (*INGEST_SETTING_NAMES, *more_names))


def _emit(
    args: argparse.Namespace, summary: dict[str, Any], printer: Callable[[dict[str, Any]], None]
) -> None:
    """Print a command's summary as JSON (``--json``) or in its readable form."""
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        printer(summary)


# What Ctrl-C leaves behind, per long-running command (printed by main()).
INTERRUPTED = {
    "ingest": "the open batch was rolled back; committed pages are kept",
    "build": "nothing was published; the previous generation is unchanged",
    "rebuild": "nothing was published; the previous generation is unchanged",
    "update": "committed batches are kept (and checkpointed); rerun to resume",
}


# -- ingest -------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.ingest import ingest_sources
    from indexer.store import PassageStore

    store = PassageStore(args.store)
    try:
        report = ingest_sources(args.sources, store, settings.ingest_options())
    finally:
        store.close()
    _emit(args, report.as_dict(), _print_ingest_summary)
    return EXIT_SKIPPED if report.skipped_total else EXIT_OK


def _print_ingest_summary(summary: dict[str, Any]) -> None:
    revisions = summary["revisions"]
    print(f"sources:    {', '.join(summary['sources'])}")
    print(f"pages:      {summary['pages']}")
    print(
        f"revisions:  {revisions['added']} added, {revisions['unchanged']} unchanged, "
        f"{revisions['superseded_in_source']} superseded within their source"
    )
    print(f"passages:   {summary['passages']}")
    print(f"redirects:  {summary['redirects']}")
    skipped = summary["skipped"]
    total = sum(skipped.values())
    print(f"skipped:    {total}" + (f" ({_by_reason(skipped)})" if total else ""))
    for item in summary["skipped_items"]:
        print(f"  - {item['location']}: {item['reason']}: {item['detail']}")
    print(f"seconds:    {summary['seconds']}")


def _by_reason(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))


# -- inspect ------------------------------------------------------------------------------


def cmd_inspect(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.store import PassageStore, StoreError

    try:
        store = PassageStore(args.store, readonly=True)
    except StoreError as exc:
        raise CommandError(str(exc)) from exc
    pages = store.find_pages(args.page, wiki=args.wiki)
    if not pages:
        raise CommandError(f"no page {args.page!r} in {args.store}")
    out: list[dict[str, Any]] = []
    for wiki, page_id in pages:
        revisions = store.revisions_of(wiki, page_id)
        out.append(
            {
                "wiki": wiki,
                "page_id": page_id,
                "title": revisions[-1].title if revisions else None,
                "aliases": store.aliases_of(wiki, revisions[-1].title) if revisions else [],
                "revisions": [
                    {
                        "revision_id": r.revision_id,
                        "parent_id": r.parent_id,
                        "timestamp": r.timestamp,
                        "editor": r.editor,
                        "sha1": r.sha1,
                        "license": r.license.identifier,
                        "license_origin": r.license_origin,
                        "source": r.source,
                        "passages": [
                            {
                                "passage_id": p.passage_id,
                                "section": " > ".join(p.section_path),
                                "anchor": p.anchor,
                                "offsets": [p.start, p.end],
                                "words": len(p.text.split()),
                                "text": p.text,
                            }
                            for p in store.passages_of_revision(wiki, r.revision_id)
                        ],
                    }
                    for r in revisions
                ],
            }
        )
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return EXIT_OK
    for page in out:
        print(f"{page['title']}  ({page['wiki']}, page {page['page_id']})")
        if page["aliases"]:
            print(f"  aliases: {', '.join(page['aliases'])}")
        for rev in page["revisions"]:
            print(
                f"  revision {rev['revision_id']}  {rev['timestamp']}  {rev['license']} "
                f"({rev['license_origin']})  editor: {rev['editor']}  "
                f"{len(rev['passages'])} passages"
            )
            for p in rev["passages"][: args.limit]:
                text = p["text"] if len(p["text"]) <= 160 else p["text"][:157] + "..."
                print(f"    [{p['passage_id']}] {p['section'] or '(lead)'}: {text}")
            if len(rev["passages"]) > args.limit:
                print(f"    … {len(rev['passages']) - args.limit} more (--limit N to show them)")
    return EXIT_OK


# -- build / rebuild ----------------------------------------------------------------------

INDEX_SETTING_NAMES = (
    "index_dir",
    "model",
    "factory",
    "embed_batch_size",
    "embed_context",
    "keep_generations",
    "fusion",
    "rrf_k",
    "alpha",
)


def _build_settings(args: argparse.Namespace) -> Settings:
    return _ingest_settings(args, INDEX_SETTING_NAMES)


def _add_index_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index", dest="index_dir", type=Path, help="index directory (default var/index)"
    )
    parser.add_argument(
        "--model",
        help="embedding model: multilingual-e5-small (about 100 languages), all-MiniLM-L6-v2 "
        "(English) or a sentence-transformers model directory (default: all-MiniLM-L6-v2 when "
        "every wiki is English or Simple English, else multilingual-e5-small)",
    )
    parser.add_argument("--factory", help="FAISS index_factory string (default: by size)")
    parser.add_argument("--embed-batch-size", type=int, help="passages per embedding batch")
    parser.add_argument(
        "--embed-context",
        choices=["none", "title", "title_section"],
        help="context embedded with each passage (default title_section)",
    )
    parser.add_argument("--keep-generations", type=int, help="generations kept (default 3)")
    _add_retrieval_flags(parser)


def _add_retrieval_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fusion", choices=["rrf", "linear"], help="hybrid fusion method")
    parser.add_argument("--rrf-k", type=int, help="RRF constant k (default 60)")
    parser.add_argument("--alpha", type=float, help="dense weight for linear fusion")


def _print_build_summary(summary: dict[str, Any]) -> None:
    _print_ingest_summary(summary["ingest"])
    emb = summary["embedding"]
    print(f"indexed:    {summary['passages_indexed']} passages")
    print(
        f"embedding:  {emb['misses']} embedded, {emb['hits']} from cache "
        f"({emb['passages_per_second']} passages/s)"
    )
    if summary["changes"] is not None:
        ch = summary["changes"]
        print(
            f"changes:    {ch['pages_added']} pages added, {ch['pages_updated']} updated, "
            f"{ch['pages_removed']} removed; {emb['misses']} passages re-embedded"
        )
    stages = ", ".join(f"{k} {v}s" for k, v in summary["stage_seconds"].items())
    print(f"stages:     {stages}")
    print(f"published:  {summary['generation']}  ({summary['path']})")
    if summary["pruned"]:
        print(f"pruned:     {', '.join(summary['pruned'])}")


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.build import build_index, rebuild_index

    options = settings.build_options()
    if args.command == "rebuild":
        report = rebuild_index(settings.index_dir, args.sources, options)
    elif getattr(args, "engine", "local") == "ray":
        report = _build_on_ray(args, settings, options)
    else:
        _check_local_engine_flags(args)
        report = build_index(args.sources, settings.index_dir, options)
    _emit(args, report.as_dict(), _print_build_summary)
    return EXIT_SKIPPED if report.ingest.skipped_total else EXIT_OK


def _add_engine_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="where the build runs: 'local' (this process, the default) or 'ray' (a Ray "
        "cluster: parse/clean/chunk as Ray tasks, embedding in a Ray Data actor pool that "
        "uses GPUs when the cluster has them; needs pip install 'wikirag[ray]')",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --engine ray: the Ray cluster to use (host:port, ray://host:10001 or "
        "'auto'); the index directory must then be on a file system every node mounts at "
        "the same path. Default: start a local Ray runtime on this machine",
    )
    parser.add_argument(
        "--ray-cpus",
        type=int,
        metavar="N",
        help="with --engine ray and no --ray-address: CPUs of the local Ray runtime "
        "(default: all cores)",
    )
    parser.add_argument(
        "--embed-actors",
        type=int,
        metavar="N",
        help="with --engine ray: embedding actors (default: one per GPU of the cluster, or "
        "one on a CPU-only cluster; each CPU actor takes one CPU)",
    )


_RAY_FLAGS = ("ray_address", "ray_cpus", "embed_actors")


def _check_local_engine_flags(args: argparse.Namespace) -> None:
    used = [n for n in _RAY_FLAGS if getattr(args, n, None) is not None]
    if used:
        flags = ", ".join("--" + n.replace("_", "-") for n in used)
        raise CommandError(f"{flags} only apply to --engine ray")


def _build_on_ray(args: argparse.Namespace, settings: Settings, options: Any) -> Any:
    """``build --engine ray``: imports Ray (the optional extra) only now."""
    try:
        from indexer.distributed.ray_build import RayOptions, build_index_ray
    except ImportError as exc:
        raise CommandError(
            "--engine ray needs Ray, which is not installed: pip install 'wikirag[ray]' "
            f"(or pip install 'ray[data]>=2.60') ({exc})"
        ) from exc
    if args.ray_address is not None and args.ray_cpus is not None:
        raise CommandError("--ray-cpus sizes a local Ray runtime; drop it with --ray-address")
    for name in ("ray_cpus", "embed_actors"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
    ray_options = RayOptions(
        address=args.ray_address, num_cpus=args.ray_cpus, embed_actors=args.embed_actors
    )
    return build_index_ray(args.sources, settings.index_dir, options, ray_options)


# -- update -------------------------------------------------------------------------------


def cmd_update(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.update import UpdateOptions, apply_updates

    options = UpdateOptions(
        ingest=settings.ingest_options(),
        batch=settings.update_batch,
        embed_batch_size=settings.embed_batch_size,
        model=settings.model,
        flush_after=settings.update_flush_seconds,
    )
    report = apply_updates(settings.index_dir, [str(s) for s in args.sources], options)
    summary = report.as_dict()
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(
            f"events {summary['events']}: pages added {report.pages_added}, updated "
            f"{report.pages_updated}, deleted {report.pages_deleted}; revisions older than "
            f"current {report.revisions_older}, unchanged {report.revisions_unchanged}, "
            f"hidden {report.revisions_hidden}, shown {report.revisions_shown}; "
            f"pages re-indexed {report.pages_reindexed} ({report.passages_indexed} passages, "
            f"{report.embedding.misses} embedded); {report.batches} batch(es), "
            f"{report.seconds:.2f}s"
        )
        if report.resumed_from:
            print(f"resumed from checkpoints: {report.resumed_from}")
        for item in summary["unknown"]["items"]:
            print(f"  unknown: {item['location']}: {item['event']}: {item['detail']}")
        for skipped in report.skipped_items:
            print(f"  skipped: {skipped.location}: {skipped.reason}: {skipped.detail}")
    return EXIT_SKIPPED if report.skipped_total else EXIT_OK


def _update_settings(args: argparse.Namespace) -> Settings:
    return _ingest_settings(args, ("index_dir", "model", "update_batch", "update_flush_seconds"))


def _add_update_parser(commands: Any) -> None:
    update = commands.add_parser(
        "update",
        help="apply Wikimedia Enterprise article events to the published index",
        description="Apply article events (NDJSON, .ndjson.gz, or '-' for a Realtime-API "
        "stream on stdin; event.type update, delete or visibility-change; an object "
        "without event is an update) or a newer export (every article an update) to the "
        "published generation in place: only the changed pages are re-cut, only new "
        "passage texts embedded. Each batch commits atomically with its checkpoint; a rerun "
        "resumes after it. The service sees the change within WIKIRAG_UPDATE_POLL_SECONDS.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    update.add_argument("sources", nargs="+", metavar="SOURCE", help="event files, or -")
    update.add_argument(
        "--index", dest="index_dir", type=Path, help="index directory (default var/index)"
    )
    update.add_argument("--model", help="embedding model (default: the index's own)")
    update.add_argument(
        "--batch", dest="update_batch", type=int, help="events per transaction (default 100)"
    )
    update.add_argument(
        "--flush-after",
        dest="update_flush_seconds",
        type=float,
        metavar="SECONDS",
        help="on a stream (-): apply what has arrived after this long without a new event "
        "(default 0.2)",
    )
    update.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_ingest_flags(update)
    update.set_defaults(handler=cmd_update, settings_from=_update_settings)
    _add_prune_parser(commands)


# -- retention ----------------------------------------------------------------------------


def cmd_prune_revisions(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime, timedelta

    from indexer.generation import IndexLayout
    from indexer.store import PassageStore

    days = args.keep_days if args.keep_days is not None else settings.revision_retention_days
    if days is None:
        raise CommandError(
            "revision retention is off; give --keep-days N or set "
            "WIKIRAG_REVISION_RETENTION_DAYS to prune superseded revisions"
        )
    cutoff = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    layout = IndexLayout(settings.index_dir)
    with layout.lock():
        store = PassageStore(layout.current().file("store.sqlite"))
        try:
            with store.transaction():
                pruned = store.prune_superseded_revisions(cutoff)
        finally:
            store.close()
    print(f"pruned {len(pruned)} superseded revision(s) saved before {cutoff}")
    for wiki, revision in pruned:
        print(f"  {wiki} {revision}")
    return EXIT_OK


def _add_prune_parser(commands: Any) -> None:
    prune = commands.add_parser(
        "prune-revisions",
        help="retention: delete superseded revisions older than N days",
        description="Delete revisions that are no longer current and were saved more than N "
        "days ago, with their passages, from the published generation's store. Current "
        "revisions are never pruned. Off unless asked: by default every revision ever "
        "indexed stays citable.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prune.add_argument("--index", dest="index_dir", type=Path, help="index directory")
    prune.add_argument(
        "--keep-days",
        type=positive_int,
        help="keep superseded revisions saved within this many days (at least 1)",
    )
    prune.set_defaults(handler=cmd_prune_revisions, settings_from=retrieval_settings)


# -- search / eval ------------------------------------------------------------------------


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from app.attribution.present import present
    from app.retrieval.fusion import FusionMethod
    from app.retrieval.ranking import SearchMode, SearchRequest

    if not args.query.strip():
        raise CommandError("the query is empty")
    retriever = open_retriever(settings)
    if args.query_language is not None and args.query_language not in retriever.languages:
        raise CommandError(
            f"--query-language {args.query_language!r} is not a language of the index; its "
            f"languages: {', '.join(retriever.languages)}"
        )
    request = SearchRequest(
        args.query,
        k=args.k,
        mode=SearchMode(args.mode),
        fusion=FusionMethod(args.fusion) if args.fusion else None,
        wikis=tuple(args.wikis) if args.wikis else None,
        languages=tuple(args.languages) if args.languages else None,
        max_per_article=args.max_per_article,
        max_per_entity=args.max_per_entity,
        max_revert_risk=args.max_revert_risk,
        rrf_k=args.rrf_k,
        alpha=args.alpha,
        query_language=args.query_language,
        cross_lingual=args.cross_lingual,
    )
    language = retriever.query_language(request)
    hits = retriever.search(request)
    rows = [present(h.passage).cli_row(rank, h.scores) for rank, h in enumerate(hits, start=1)]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    if language.language is None:
        print("query language: unknown (BM25 searches every language)")
    else:
        how = "given" if args.query_language else f"detected, {language.confidence:.2f}"
        print(f"query language: {language.language} ({how})")
    if not rows:
        print("no results")
    for row in rows:
        scores = "  ".join(f"{k} {v}" for k, v in row["scores"].items())
        print(f"{row['rank']:>2}. {row['title']} — {row['section'] or '(lead)'}  [{scores}]")
        print(
            f"    revision {row['revision_id']} ({row['revision_timestamp']}, "
            f"{row['license']})  {row['url']}"
        )
        text = row["text"] if len(row["text"]) <= 300 else row["text"][:297] + "..."
        print(f"    {text}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from app.evaluation.retrieval import DEFAULT_VARIANTS, Variant, evaluate, load_questions
    from app.retrieval.fusion import FusionMethod
    from app.retrieval.ranking import SearchMode

    retriever = open_retriever(settings)
    questions = list(load_questions(args.questions))
    if args.limit is not None:
        questions = questions[: args.limit]
    variants = list(DEFAULT_VARIANTS)
    if args.compare_fusion:
        variants += [
            Variant("hybrid_rrf", SearchMode.HYBRID, FusionMethod.RRF),
            Variant("hybrid_linear", SearchMode.HYBRID, FusionMethod.LINEAR),
        ]
    result = evaluate(
        retriever,
        questions,
        variants=variants,
        max_per_article=args.max_per_article,
        progress=settings.progress,
    )
    result["settings"] = {
        "fusion": retriever.defaults.fusion.value,
        "rrf_k": retriever.defaults.rrf_k,
        "alpha": retriever.defaults.alpha,
        "max_per_article": args.max_per_article,
        "generation": retriever.index.generation.generation,
    }
    if args.output:
        from indexer.generation import write_json_atomic

        write_json_atomic(args.output, result)
    print(f"{result['questions']} questions over {result['passages']} passages")
    _print_eval_table(result["modes"])
    for group, title in (
        ("by_language", "question language"),
        ("by_kind", "kind"),
        ("by_language_kind", "language/kind"),
    ):
        for value, part in result.get(group, {}).items():
            print(f"\n{title} {value} ({part['questions']} questions)")
            _print_eval_table(part["modes"])
    return EXIT_OK


def _print_eval_table(modes: dict[str, dict[str, float]]) -> None:
    print(f"{'mode':<14} {'top1':>6} {'top5':>6} {'top10':>6} {'top20':>6} {'mrr20':>6}")
    for mode, s in modes.items():
        print(
            f"{mode:<14} {s['top1']:>6.3f} {s['top5']:>6.3f} {s['top10']:>6.3f} "
            f"{s['top20']:>6.3f} {s['mrr20']:>6.3f}"
        )


# -- serve / keys -------------------------------------------------------------------------


SERVE_SETTING_NAMES = (
    "index_dir", "model", "host", "port", "workers", "open_access", "reload_poll_seconds",
    "max_query_chars", "rate_limit_per_minute", "keys_db", "shard", "shard_urls",
    "shard_timeout_seconds", "usage_db",
)  # fmt: skip


def _serve_settings(args: argparse.Namespace) -> Settings:
    if not getattr(args, "open_access", False):
        args.open_access = None  # the flag only turns it on; the environment may too
    if not getattr(args, "shard", False):
        args.shard = None
    if getattr(args, "shard_urls", None):
        args.shard_urls = ",".join(args.shard_urls)  # as WIKIRAG_SHARD_URLS reads them
    settings = settings_from_args(args, SERVE_SETTING_NAMES)
    if getattr(args, "router", False) and not settings.shard_urls:
        raise CommandError(
            "--router needs the shards: --shard-url URL (repeat) or WIKIRAG_SHARD_URLS"
        )
    if settings.shard and settings.shard_urls:
        raise CommandError(
            "a service is either a shard (--shard) or a router (--shard-url), not both"
        )
    return settings


def _export_settings(args: argparse.Namespace) -> None:
    """Hand the flags to worker processes, which build their Settings from WIKIRAG_*."""
    import os

    for name in SERVE_SETTING_NAMES:
        value = getattr(args, name, None)
        if value is not None:
            os.environ[f"WIKIRAG_{name.upper()}"] = str(value)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    import uvicorn

    from app.api.main import configure_logging, create_app

    configure_logging()
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "access_log": False,  # the service writes its own JSON access log
        "log_config": None,
        "timeout_graceful_shutdown": 30,
    }
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the
    # handler that was there before it: these note it, so that the command exits 0 after a
    # SIGTERM and 130 after Ctrl-C instead of dying by the signal.
    received: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, frame: received.append(signum))
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        if settings.workers > 1:
            _export_settings(args)
            uvicorn.run(
                "app.api.main:create_app_from_env",
                factory=True,
                workers=settings.workers,
                **common,
            )
        else:
            uvicorn.run(lambda: create_app(settings), factory=True, **common)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_INTERRUPTED if signal.SIGINT in received else EXIT_OK


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from app.accounts.keys import KeyNotFound, KeyStore

    keys = KeyStore(settings.keys_db_path())
    if args.keys_command == "create":
        try:
            record, raw = keys.create(
                args.name,
                admin=args.admin,
                rate_limit=args.rate_limit,
                quota_requests=args.quota_requests,
                quota_passages=args.quota_passages,
                store_queries=args.store_queries,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if args.json:
            print(json.dumps({**record.as_dict(), "key": raw}, indent=2))
        else:
            print(f"key id:     {record.key_id}")
            print(f"name:       {record.name}")
            print(f"admin:      {'yes' if record.admin else 'no'}")
            limit = record.rate_limit
            print(f"rate limit: {'default' if limit is None else f'{limit}/min'}")
            print(f"quota:      {_quota_text(record)}")
            print(f"queries:    {'stored' if record.store_queries else 'not stored'}")
            print(f"key:        {raw}")
            print("This key is shown only now; store it safely. Send it as "
                  "'Authorization: Bearer <key>'.")  # fmt: skip
        return EXIT_OK
    if args.keys_command == "quota":
        return _keys_quota(keys, args)
    if args.keys_command == "queries":
        try:
            record = keys.set_store_queries(args.key_id, args.store == "on")
        except KeyNotFound as exc:
            raise CommandError(str(exc)) from exc
        stored = "stored" if record.store_queries else "not stored"
        print(f"{record.key_id} ({record.name}): query text {stored}")
        return EXIT_OK
    if args.keys_command == "revoke":
        try:
            record = keys.revoke(args.key_id)
        except KeyNotFound as exc:
            raise CommandError(str(exc)) from exc
        print(f"revoked {record.key_id} ({record.name}) at {record.revoked_at}")
        return EXIT_OK
    records = keys.list()
    if args.json:
        print(json.dumps([r.as_dict() for r in records], indent=2))
        return EXIT_OK
    if not records:
        print(f"no API keys in {keys.path}")
        return EXIT_OK
    print(f"{'key id':<14} {'name':<24} {'admin':<5} {'limit':<7} {'created':<20} "
          f"{'revoked':<20} quota")  # fmt: skip
    for r in records:
        shown = "default" if r.rate_limit is None else str(r.rate_limit)
        print(
            f"{r.key_id:<14} {r.name[:24]:<24} {'yes' if r.admin else 'no':<5} {shown:<7} "
            f"{r.created_at:<20} {r.revoked_at or '-':<20} {_quota_text(r)}"
        )
    return EXIT_OK


def _quota_text(record: Any) -> str:
    parts = [
        f"{'unlimited' if n is None else n} {what}/month"
        for what, n in (("requests", record.quota_requests), ("passages", record.quota_passages))
    ]
    return ", ".join(parts)


def _quota_value(text: str) -> int | None:
    """``--requests`` / ``--passages`` value: a count ≥ 0, or 'none' for unlimited."""
    if text.strip().lower() in ("none", "unlimited"):
        return None
    return whole_number(text, 0, "a number or 'none'")


_KEEP = object()


def _keys_quota(keys: Any, args: argparse.Namespace) -> int:
    from app.accounts.keys import KeyNotFound

    current = keys.get(args.key_id)
    if current is None:
        raise CommandError(f"no API key with id {args.key_id!r} (see `wikirag keys list`)")
    requests = current.quota_requests if args.requests is _KEEP else args.requests
    passages = current.quota_passages if args.passages is _KEEP else args.passages
    try:
        record = keys.set_quota(args.key_id, requests=requests, passages=passages)
    except KeyNotFound as exc:
        raise CommandError(str(exc)) from exc
    print(f"{record.key_id} ({record.name}): {_quota_text(record)}")
    return EXIT_OK


def _keys_settings(args: argparse.Namespace) -> Settings:
    return settings_from_args(args, ("index_dir", "keys_db"))


def _add_serve_parsers(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the HTTP query service",
        description="Serve search, passages, citations and index status over HTTP (OpenAPI at "
        "/openapi.json, docs at /docs). The service follows the index: a newly published "
        "generation is picked up within --reload-poll-seconds, on SIGHUP, or on POST "
        "/v1/admin/reload. Requests need an API key (`wikirag keys create`) unless "
        "--open-access.",
    )
    serve.add_argument("--index", dest="index_dir", type=Path, help="index directory")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--model", help="embedding model (default: the index's own)")
    serve.add_argument(
        "--open-access",
        action="store_true",
        help="serve requests without an API key, with admin rights (local use only)",
    )
    serve.add_argument(
        "--reload-poll-seconds", type=float, help="symlink poll interval (0: off; default 2)"
    )
    serve.add_argument("--max-query-chars", type=int, help="longest query (default 1000)")
    serve.add_argument(
        "--rate-limit-per-minute", type=int, help="default per-key limit (0: none; default 600)"
    )
    serve.add_argument("--keys-db", type=Path, help="API keys database")
    serve.add_argument(
        "--usage-db", type=Path, help="usage database (default: usage.sqlite by the keys db)"
    )
    serve.add_argument(
        "--shard",
        action="store_true",
        help="serve one shard of a split index (`wikirag shard`) to a router: adds the "
        "internal /v1/shard/candidates and /v1/shard/info routes (normal API keys apply)",
    )
    serve.add_argument(
        "--router",
        action="store_true",
        help="router mode: answer from the shard services named by --shard-url (no --index); "
        "WIKIRAG_SHARD_API_KEY is the key sent to them",
    )
    serve.add_argument(
        "--shard-url",
        dest="shard_urls",
        action="append",
        metavar="URL",
        help="a shard service's base URL, e.g. http://10.0.0.5:8000 (repeat; implies --router)",
    )
    serve.add_argument(
        "--shard-timeout-seconds",
        type=float,
        help="router mode: a shard slower than this is left out, partial answer (default 5)",
    )
    serve.set_defaults(handler=cmd_serve, settings_from=_serve_settings)

    keys = commands.add_parser(
        "keys",
        help="create, revoke and list API keys",
        description="Manage the service's API keys (stored hashed in <index>/keys.sqlite or "
        "--keys-db). A new key is printed once and cannot be shown again.",
    )
    keys.add_argument("--index", dest="index_dir", type=Path, help="index directory")
    keys.add_argument("--keys-db", type=Path, help="API keys database")
    keys_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = keys_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument("--admin", action="store_true", help="allow the admin routes")
    create.add_argument("--rate-limit", type=int, help="requests per minute (default: service's)")
    create.add_argument(
        "--quota-requests", type=int, help="requests per calendar month (UTC; default unlimited)"
    )
    create.add_argument(
        "--quota-passages", type=int, help="passages per calendar month (UTC; default unlimited)"
    )
    create.add_argument(
        "--store-queries",
        action="store_true",
        help="store this key's query text (its client agreed), kept for "
        "WIKIRAG_USAGE_QUERY_RETENTION_DAYS",
    )
    create.add_argument("--json", action="store_true", help="print the key as JSON")
    quota = keys_commands.add_parser(
        "quota",
        help="set a key's monthly quotas",
        description="Set a key's monthly quotas (UTC calendar months; 429 once used up). "
        "A flag left out keeps its quota; 'none' removes it.",
    )
    quota.add_argument("key_id", metavar="KEY_ID", help="the key's id (see `keys list`)")
    queries = keys_commands.add_parser(
        "queries",
        help="store a key's query text or not",
        description="Store the key's query text (its client agreed; kept for "
        "WIKIRAG_USAGE_QUERY_RETENTION_DAYS) or not (the default). Applies from its next "
        "request.",
    )
    queries.add_argument("key_id", metavar="KEY_ID", help="the key's id (see `keys list`)")
    queries.add_argument("store", choices=("on", "off"), help="on: store; off: do not")
    quota.add_argument("--requests", type=_quota_value, default=_KEEP, help="requests per "
                       "month, or 'none'")  # fmt: skip
    quota.add_argument("--passages", type=_quota_value, default=_KEEP, help="passages per "
                       "month, or 'none'")  # fmt: skip
    revoke = keys_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id (see `keys list`)")
    listing = keys_commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="print as JSON")
    keys.set_defaults(handler=cmd_keys, settings_from=_keys_settings)


# -- parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wikirag",
        description="Retrieval and attribution over licensed Wikipedia content: ingest "
        "exports, build a hybrid (dense + BM25) index, search it and cite exact revisions.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ingest = commands.add_parser(
        "ingest",
        help="read Wikipedia exports into a passage store",
        description="Read MediaWiki XML exports (.xml, .xml.bz2, multistream .bz2) and "
        "Wikimedia Enterprise snapshots (.tar.gz of NDJSON, .ndjson, .ndjson.gz) into a "
        "SQLite passage store: clean the wikitext, cut section-aware passages, keep every "
        "revision with its license. Ingesting the same input twice changes nothing.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ingest.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="export files")
    ingest.add_argument("--store", type=Path, required=True, help="SQLite store to write")
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_ingest_flags(ingest)
    ingest.set_defaults(handler=cmd_ingest, settings_from=_ingest_settings)

    inspect = commands.add_parser(
        "inspect",
        help="show a page's revisions and passages",
        description="Show a page of a passage store: its revisions (id, time, license, "
        "editor) and each revision's passages with section, anchor and offsets.",
    )
    inspect.add_argument("page", metavar="TITLE|PAGE_ID", help="page title, alias or page id")
    inspect.add_argument("--store", type=Path, required=True, help="SQLite store to read")
    inspect.add_argument("--wiki", help="only this wiki (e.g. enwiki)")
    inspect.add_argument("--limit", type=int, default=10, help="passages shown per revision")
    inspect.add_argument("--json", action="store_true", help="print everything as JSON")
    inspect.set_defaults(handler=cmd_inspect)

    build = commands.add_parser(
        "build",
        help="ingest exports and publish a hybrid index generation",
        description="Ingest exports into a new index generation, embed every current passage "
        "(reusing the embedding cache), build the FAISS (dense) and tantivy (BM25) indexes "
        "and publish the generation with one atomic switch. A failed or killed build leaves "
        "the published generation untouched.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="export files")
    build.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_ingest_flags(build)
    _add_index_flags(build)
    _add_engine_flags(build)
    build.set_defaults(handler=cmd_build, settings_from=_build_settings)

    rebuild = commands.add_parser(
        "rebuild",
        help="rebuild the published index from its recorded sources (or newer files)",
        description="Re-read the sources recorded in the published manifest, or the newer "
        "files given, into a new generation, reusing the embedding cache, publish it "
        "atomically and report what changed (pages added, updated, removed; passages "
        "re-embedded).",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rebuild.add_argument(
        "sources",
        nargs="*",
        type=Path,
        metavar="SOURCE",
        help="newer export files (default: the recorded sources)",
    )
    rebuild.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_ingest_flags(rebuild)
    _add_index_flags(rebuild)
    rebuild.set_defaults(handler=cmd_build, settings_from=_build_settings)

    search = commands.add_parser(
        "search",
        help="search the published index",
        description="Print the top passages for a question with title, section, revision "
        "id, permalink, license and per-component scores.",
    )
    search.add_argument("query", help="the question or keywords")
    search.add_argument("--index", dest="index_dir", type=Path, help="index directory")
    search.add_argument("--model", help="embedding model (default: the index's own)")
    search.add_argument("-k", type=positive_int, default=10, help="number of passages (default 10)")
    search.add_argument("--mode", choices=["hybrid", "dense", "lexical"], default="hybrid")
    search.add_argument("--wiki", dest="wikis", action="append", help="only this wiki")
    search.add_argument("--language", dest="languages", action="append", help="only this language")
    search.add_argument("--max-per-article", type=positive_int, help="cap passages per article")
    search.add_argument(
        "--max-per-entity",
        type=positive_int,
        help="cap passages per Wikidata item (one article across languages)",
    )
    search.add_argument(
        "--max-revert-risk",
        type=probability,
        metavar="P",
        help="leave out passages of revisions scored more likely than P (0–1) to be reverted",
    )
    search.add_argument(
        "--query-language",
        metavar="CODE",
        help="the question's language (default: detected among the index's languages)",
    )
    search.add_argument(
        "--no-cross-lingual",
        dest="cross_lingual",
        action="store_false",
        help="answer only from passages in the query's language (default: any language)",
    )
    search.add_argument("--json", action="store_true", help="print results as JSON")
    _add_retrieval_flags(search)
    search.set_defaults(handler=cmd_search, settings_from=retrieval_settings)

    evaluate = commands.add_parser(
        "eval",
        help="measure retrieval quality on questions with known answers",
        description="Top-k answer accuracy (k = 1, 5, 10, 20) and MRR@20 per mode (hybrid, "
        "dense, lexical) on a JSONL file of {question, answers}; a question is a hit at k "
        "when one of the top-k passages contains an answer (case-insensitive, "
        "whitespace-normalised).",
    )
    evaluate.add_argument("--index", dest="index_dir", type=Path, help="index directory")
    evaluate.add_argument("--questions", type=Path, required=True, help="questions JSONL")
    evaluate.add_argument("--output", type=Path, help="write the figures as JSON here")
    evaluate.add_argument("--model", help="embedding model (default: the index's own)")
    evaluate.add_argument("--limit", type=positive_int, help="only the first N questions")
    evaluate.add_argument("--max-per-article", type=positive_int, help="cap passages per article")
    evaluate.add_argument(
        "--compare-fusion",
        action="store_true",
        help="also report hybrid with RRF and with linear fusion",
    )
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_retrieval_flags(evaluate)
    evaluate.set_defaults(handler=cmd_eval, settings_from=retrieval_settings)
    _add_serve_parsers(commands)
    from app.cli.shard import add_shard_parser

    add_shard_parser(commands)
    _add_update_parser(commands)
    from app.cli.attribute import add_attribute_parsers

    add_attribute_parsers(commands)
    from app.cli.usage import add_usage_parsers

    add_usage_parsers(commands)
    from app.cli.mcp import add_mcp_parser

    add_mcp_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # faiss says at INFO which CPU build it loaded: noise for an operator
        logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    try:
        settings_from: Callable[[argparse.Namespace], Settings] = getattr(
            args, "settings_from", lambda a: Settings()
        )
        settings = settings_from(args)
        handler: Handler = args.handler
        return handler(args, settings)
    except KeyboardInterrupt:
        left = INTERRUPTED.get(args.command, "stopped")
        print(f"wikirag {args.command}: interrupted: {left}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValidationError, SettingsError) as exc:  # SettingsError: a WIKIRAG_* not parsed
        print(f"wikirag: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (WikiragError, OSError) as exc:
        message = failure_message(exc)
        if message is None:
            raise  # a bug: keep its traceback
        print(f"wikirag {args.command}: {message}", file=sys.stderr)
        return EXIT_FAILED


def failure_message(exc: BaseException) -> str | None:
    """What to tell the operator about ``exc``, or None when it is a bug that must keep its
    traceback. Domain errors (:class:`~indexer.errors.WikiragError`) are reported by their
    message; an ``OSError`` only when it names a file (a missing source, an unwritable
    output: the operator's to fix); a bare ``ValueError`` or ``OSError`` without a path is a
    bug, not a tidy message.

    >>> from indexer.errors import InvalidInput
    >>> failure_message(InvalidInput("k must be ≥ 1, got 0"))
    'k must be ≥ 1, got 0'
    >>> failure_message(FileNotFoundError(2, "No such file or directory", "dump.xml"))
    "[Errno 2] No such file or directory: 'dump.xml'"
    >>> failure_message(ValueError("bad state")) is None, failure_message(OSError("?")) is None
    (True, True)
    """
    if isinstance(exc, WikiragError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return str(exc)
    return None


if __name__ == "__main__":
    sys.exit(main())
