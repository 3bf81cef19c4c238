"""``wikirag shard``: split a published index into shard indexes (:mod:`indexer.sharding`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.settings import Settings


def cmd_shard(args: argparse.Namespace, settings: Settings) -> int:
    from app.cli.common import EXIT_USAGE
    from indexer.sharding import ShardingError, split_index

    try:
        report = split_index(
            settings.index_dir, args.out, by=args.by, shards=args.shards, factory=args.factory
        )
    except ShardingError as exc:  # bad --by/--shards/--out: a usage error, not a traceback
        print(f"wikirag shard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    print(f"split generation {report.source_generation} by {report.by} in {report.seconds:.1f} s")
    for shard in report.shards:
        print(
            f"  shard {shard.id}: {shard.path}  {shard.pages} pages, {shard.indexed_passages} "
            f"indexed passages, wikis {', '.join(shard.wikis)} (vectors: {shard.vectors_from})"
        )
    return 0


def _shard_settings(args: argparse.Namespace) -> Settings:
    return Settings(**({"index_dir": args.index_dir} if args.index_dir else {}))


def add_shard_parser(commands: Any) -> None:
    shard = commands.add_parser(
        "shard",
        help="split an index into shards for sharded serving",
        description="Split the published index into OUT/shard-0 … OUT/shard-<N-1>, each a "
        "published index holding whole pages (every revision and passage of a page in one "
        "shard): --by wiki puts whole wikis in a shard (one per wiki, or packed into "
        "--shards groups); --by hash spreads pages by sha256(wiki:page_id) mod --shards. "
        "Vectors are copied from an exact (Flat) FAISS index, else taken from the embedding "
        "cache; the lexical index is rebuilt per shard. Serve each with `wikirag serve "
        "--shard --index OUT/shard-<i>` and a router with `wikirag serve --router "
        "--shard-url URL …`.",
    )
    shard.add_argument("--index", dest="index_dir", type=Path, help="the index to split")
    shard.add_argument("--out", type=Path, required=True, help="directory for the shards")
    shard.add_argument(
        "--by", choices=["wiki", "hash"], default="hash", help="how to split (default hash)"
    )
    shard.add_argument(
        "--shards", type=int, help="number of shards (needed for hash; wiki: one per wiki)"
    )
    shard.add_argument(
        "--factory", help="FAISS factory of the shards (default: the source's if Flat)"
    )
    shard.add_argument("--json", action="store_true", help="print the report as JSON")
    shard.set_defaults(handler=cmd_shard, settings_from=_shard_settings)
