"""``wikirag mcp``: run the Model Context Protocol server (:mod:`app.mcp.server`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from app.settings import Settings


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from app.mcp.server import run
    except ImportError as exc:
        sys.stderr.write(
            f"wikirag mcp: the MCP server needs the 'mcp' package ({exc}); "
            "install it with: pip install 'wikirag[mcp]'\n"
        )
        return 1

    # stdio: stdout carries the protocol, so every log line goes to stderr (the default).
    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    logging.getLogger("app.mcp.server").setLevel(logging.INFO)
    run(settings.index_dir, settings, args.transport, args.host, args.port)
    return 0


def _mcp_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {"progress": False}
    for name in ("index_dir", "model"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def add_mcp_parser(commands: Any) -> None:
    mcp = commands.add_parser(
        "mcp",
        help="run a Model Context Protocol server for assistants",
        description="Serve the index to MCP clients (Claude Desktop, IDEs, agents) with the "
        "tools search_wikipedia, get_passage, cite and attribute_answer; every passage carries "
        "its revision permalink, license and attribution. stdio by default (the client starts "
        "this command); --transport http serves streamable HTTP on --host/--port at /mcp.",
    )
    mcp.add_argument("--index", dest="index_dir", type=Path, help="index directory")
    mcp.add_argument("--model", help="embedding model (default: the index's own)")
    mcp.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default="stdio",
        help="stdio (default: the client starts this command and talks on stdin/stdout) or "
        "http: MCP streamable HTTP at http://HOST:PORT/mcp until SIGTERM or Ctrl-C",
    )
    mcp.add_argument("--host", default="127.0.0.1", help="HTTP bind address (127.0.0.1)")
    mcp.add_argument("--port", type=int, default=8001, help="HTTP port (default 8001)")
    mcp.set_defaults(handler=cmd_mcp, settings_from=_mcp_settings)
