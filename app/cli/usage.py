"""``wikirag usage report``: what each API key was served, for licensing reports (registered
by :mod:`app.cli.main`).

    wikirag usage report --index var/index --from 2026-11-01 --to 2026-11-30 --format csv
    wikirag usage report --usage-db var/usage.sqlite --key 3f2a9c01b7de --format json --top 20

JSON: a list of keys, each with its totals, requests per route, use per wiki and its most
served articles. CSV: one table, a ``section`` column saying what a row is (``key``,
``wiki`` or ``article``). Article titles come from the index's published generation when it
has the page, else only the page id is given.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from app.cli.common import EXIT_OK, CommandError, settings_from_args
from app.settings import Settings

CSV_COLUMNS = (
    "section", "key_id", "name", "wiki", "page_id", "title", "requests", "passages", "chars",
    "citations", "attributions",
)  # fmt: skip


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value!r}") from None


@contextmanager
def _titles(index_dir: Path) -> Iterator[Callable[[str, int], str | None] | None]:
    """Page titles from the published generation's store (None when there is none)."""
    from indexer.generation import IndexError_, IndexLayout
    from indexer.store import PassageStore, StoreError

    try:
        store = PassageStore(IndexLayout(index_dir).current().file("store.sqlite"), readonly=True)
    except (IndexError_, StoreError, OSError):
        yield None
        return

    def title(wiki: str, page_id: int) -> str | None:
        page = store.page(wiki, page_id)
        return None if page is None else page.title

    try:
        yield title
    finally:
        store.close()


def _key_names(settings: Settings) -> dict[str, str]:
    from app.accounts.keys import KeyStore

    path = settings.keys_db_path()
    if not path.is_file():
        return {}
    return {k.key_id: k.name for k in KeyStore(path).list()}


def write_csv(report: list[dict[str, Any]], out: TextIO) -> None:
    """The report as one CSV table (``section``: key, wiki or article)."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for key in report:
        common = {"key_id": key["key_id"], "name": key.get("name", "")}
        writer.writerow({**key, **common, "section": "key"})
        for wiki in key["wikis"]:
            writer.writerow({**wiki, **common, "section": "wiki"})
        for article in key["top_articles"]:
            writer.writerow({**article, **common, "section": "article"})


def cmd_usage_report(args: argparse.Namespace, settings: Settings) -> int:
    from app.accounts.metering import usage_report

    path = settings.usage_db_path()
    if not path.is_file():
        raise CommandError(f"no usage database at {path} (--usage-db, or --index)")
    today = dt.datetime.now(dt.UTC).date()
    start = args.start or today.replace(day=1)
    end = args.end or today
    if start > end:
        raise CommandError(f"--from {start} is after --to {end}")
    if args.top < 1:
        raise CommandError(f"--top must be ≥ 1, got {args.top}")
    with _titles(settings.index_dir) as titles:
        report = usage_report(path, start, end, key_id=args.key, top=args.top, titles=titles)
    names = _key_names(settings)
    for key in report:
        key["name"] = names.get(str(key["key_id"]), "")
    if args.format == "json":
        doc = {"from": start.isoformat(), "to": end.isoformat(), "keys": report}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        write_csv(report, sys.stdout)
    return EXIT_OK


def _usage_settings(args: argparse.Namespace) -> Settings:
    return settings_from_args(args, ("index_dir", "keys_db", "usage_db"))


def add_usage_parsers(commands: Any) -> None:
    usage = commands.add_parser(
        "usage",
        help="usage reports (what each API key was served)",
        description="Report the usage the service metered per API key (requests by route, "
        "passages, characters, citations and attributions, by wiki and article) from the "
        "usage database (<index>/usage.sqlite or --usage-db).",
    )
    actions = usage.add_subparsers(dest="usage_command", metavar="ACTION", required=True)
    report = actions.add_parser(
        "report",
        help="per key: totals, per wiki, top articles served",
        description="Per API key: requests (by route), passages, characters, citations and "
        "attributions served from --from to --to (inclusive UTC days), the same per wiki, and "
        "the most served articles (titles from the index's published generation).",
    )
    report.add_argument("--from", dest="start", type=_day, metavar="YYYY-MM-DD",
                        help="first UTC day (default: the 1st of this month)")  # fmt: skip
    report.add_argument("--to", dest="end", type=_day, metavar="YYYY-MM-DD",
                        help="last UTC day, inclusive (default: today)")  # fmt: skip
    report.add_argument("--format", choices=("csv", "json"), default="csv", help="default csv")
    report.add_argument("--key", metavar="KEY_ID", help="only this key (default: every key)")
    report.add_argument("--top", type=int, default=10, metavar="N",
                        help="articles per key (default 10)")  # fmt: skip
    report.add_argument("--index", dest="index_dir", type=Path, help="index directory")
    report.add_argument("--usage-db", type=Path, help="usage database")
    report.add_argument("--keys-db", type=Path, help="API keys database (for key names)")
    report.set_defaults(handler=cmd_usage_report, settings_from=_usage_settings)
