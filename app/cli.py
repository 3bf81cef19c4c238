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

from app.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SKIPPED = 3
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """exit status:
  0    success
  1    the command failed (the message says why; nothing published was changed)
  2    bad arguments or configuration
  3    finished, but some input items were skipped (the summary lists them)
  130  interrupted (Ctrl-C); committed batches are kept, the open one is rolled back
"""

Handler = Callable[[argparse.Namespace, Settings], int]


class CommandError(Exception):
    """A failure the operator can act on; printed without a traceback."""


def _settings(args: argparse.Namespace, names: Sequence[str]) -> Settings:
    overrides: dict[str, Any] = {}
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


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
        metavar="WIKI=RULE",
        help="license of a wiki's XML export revisions: 'auto' (CC BY-SA 3.0 before "
        "2023-06-07, 4.0 from then on; the default) or an SPDX id (CC-BY-SA-4.0)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


INGEST_SETTING_NAMES = ("wiki", "namespaces", "max_words", "overlap_words", "license_rules")


def _ingest_settings(args: argparse.Namespace) -> Settings:
    if args.license_rule:
        rules: dict[str, str] = {}
        for item in args.license_rule:
            wiki, sep, rule = item.partition("=")
            if not sep or not wiki or not rule:
                raise CommandError(f"--license-rule expects WIKI=RULE, got {item!r}")
            rules[wiki] = rule
        args.license_rules = rules
    settings = _settings(args, INGEST_SETTING_NAMES)
    if args.no_progress:
        settings.progress = False
    return settings


# -- ingest -------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.ingest import ingest_sources
    from indexer.store import PassageStore

    store = PassageStore(args.store)
    try:
        report = ingest_sources(args.sources, store, settings.ingest_options())
    except KeyboardInterrupt:
        print("interrupted: the open batch was rolled back; committed pages are kept",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        _print_ingest_summary(report.as_dict())
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from indexer.sources.open import SourceError
    from indexer.store import StoreError

    try:
        settings_from: Callable[[argparse.Namespace], Settings] = getattr(
            args, "settings_from", lambda a: Settings()
        )
        settings = settings_from(args)
        handler: Handler = args.handler
        return handler(args, settings)
    except ValidationError as exc:
        print(f"wikirag: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CommandError, SourceError, StoreError, ValueError) as exc:
        print(f"wikirag {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
