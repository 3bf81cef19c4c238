"""Usage metering overhead and report time (issue 10).

1. ``POST /v1/search`` (hybrid) latency at 1 and 16 clients with metering off and on, in one
   run: two ``wikirag serve`` processes on the same index (``WIKIRAG_METERING=false`` and
   ``true``), both called with a real API key that has monthly quotas (so the quota check,
   the counters and the ``X-Quota-*`` headers are all on the measured path), driven by wrk
   with the real SQuAD questions of ``http_bench`` and alternated off / on per client count.
   Target: at most 1 ms added at p50.
2. The operator report (``wikirag usage report``, all keys, top 10 articles each), the same
   for one key, and the ``GET /v1/usage`` query of one key over a month, on a usage database
   filled with ``--rows`` synthetic metered rows (default 10 M).

    .venv/bin/python -m benchmarks.metering_bench --index var/samples/index
    .venv/bin/python -m benchmarks.metering_bench --duration 1 --rows 20000 --no-write  # smoke
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    ROOT,
    LoadSampler,
    dir_size_bytes,
    machine_info,
    machine_line,
    md_table,
    update_results_md,
    write_result,
)
from benchmarks.http_bench import free_port, lua_script, run_wrk, wait_ready

NAME = "metering_bench"
WIKIS = ("enwiki", "simplewiki", "frwiki", "dewiki", "ruwiki")
ROUTES = ("/v1/search", "/v1/passages/{passage_id}", "/v1/attribute")


# -- HTTP overhead ------------------------------------------------------------------------------


def _start_server(index: Path, tmp: Path, metering: bool, keys_db: Path) -> tuple[Any, str]:
    port = free_port()
    env = {
        **os.environ,
        "WIKIRAG_RATE_LIMIT_PER_MINUTE": "0",
        "WIKIRAG_METERING": "true" if metering else "false",
        "WIKIRAG_USAGE_DB": str(tmp / f"usage-{'on' if metering else 'off'}.sqlite"),
        "WIKIRAG_KEYS_DB": str(keys_db),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--index", str(index), "--host", "127.0.0.1",
         "--port", str(port), "--reload-poll-seconds", "0"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return server, f"http://127.0.0.1:{port}"


def http_overhead(args: argparse.Namespace) -> list[dict[str, Any]]:
    from app.accounts.keys import KeyStore

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wikirag-metering-bench-") as name:
        tmp = Path(name)
        keys_db = tmp / "keys.sqlite"
        _, raw = KeyStore(keys_db).create(
            "bench", quota_requests=10**12, quota_passages=10**12, rate_limit=0
        )
        script = tmp / "search.lua"
        lua_script(script, args.questions, args.k)
        with script.open("a", encoding="utf-8") as lua:
            lua.write(f'wrk.headers["Authorization"] = "Bearer {raw}"\n')
        servers = {m: _start_server(args.index, tmp, m, keys_db) for m in (False, True)}
        try:
            for _, url in servers.values():
                wait_ready(url, timeout=300)
            for _, url in servers.values():
                run_wrk(url, script, 2, args.warmup)  # page in the indexes, warm the caches
            for clients in args.clients:
                for metering in (False, True):
                    run = run_wrk(servers[metering][1], script, clients, args.duration)
                    run["metering"] = metering
                    runs.append(run)
                    print(json.dumps(run), flush=True)
        finally:
            for server, _ in servers.values():
                server.send_signal(signal.SIGTERM)
            for server, _ in servers.values():
                server.wait(timeout=60)
        usage_db = tmp / "usage-on.sqlite"
        if usage_db.is_file():
            with sqlite3.connect(usage_db) as conn:
                metered = conn.execute("SELECT SUM(requests) FROM usage_requests").fetchone()[0]
            print(f"metered requests (metering on, warm-up included): {metered}", flush=True)
    return runs


# -- report time ---------------------------------------------------------------------------------


def _synthetic_rows(n: int, keys: int, days: int, start: dt.date) -> Iterator[tuple[Any, ...]]:
    """Distinct (key, day, route, wiki, page) rows: ``keys`` keys over ``days`` days."""
    day_names = [(start + dt.timedelta(days=d)).isoformat() for d in range(days)]
    for i in range(n):
        key, rest = i % keys, i // keys
        day, rest = rest % days, rest // days
        wiki, page = rest % len(WIKIS), rest // len(WIKIS)
        passages = 1 + i % 5
        yield (f"{key:012x}", day_names[day], ROUTES[i % 2], WIKIS[wiki], page + 1, passages,
               passages * 600, int(i % 3 == 0), 0)  # fmt: skip


def fill_usage_db(path: Path, rows: int, keys: int, days: int, start: dt.date) -> float:
    """Write ``rows`` synthetic content rows (and the matching request rows); seconds."""
    from app.accounts.metering import connect_usage_db

    started = time.perf_counter()
    conn = connect_usage_db(path)
    batch: list[tuple[Any, ...]] = []
    with conn:
        for row in _synthetic_rows(rows, keys, days, start):
            batch.append(row)
            if len(batch) == 100_000:
                conn.executemany(
                    "INSERT INTO usage_content VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch
                )
                batch.clear()
        conn.executemany("INSERT INTO usage_content VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
        conn.executemany(
            "INSERT INTO usage_requests VALUES (?, ?, ?, ?)",
            [(f"{k:012x}", (start + dt.timedelta(days=d)).isoformat(), r, 1000)
             for k in range(keys) for d in range(days) for r in ROUTES],
        )  # fmt: skip
    conn.close()
    return time.perf_counter() - started


def report_time(args: argparse.Namespace) -> dict[str, Any]:
    from app.accounts.metering import usage_report, usage_rows

    start = dt.date(2026, 1, 1)
    end = start + dt.timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory(prefix="wikirag-usage-report-", dir=args.workdir) as name:
        path = Path(name) / "usage.sqlite"
        fill_s = fill_usage_db(path, args.rows, args.keys, args.days, start)
        print(f"{args.rows:,} rows written in {fill_s:.1f} s", flush=True)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        report = usage_report(path, start, end, top=10)
        timings["report_all_keys_s"] = time.perf_counter() - t0
        one = f"{0:012x}"
        t0 = time.perf_counter()
        usage_report(path, start, end, key_id=one, top=10)
        timings["report_one_key_s"] = time.perf_counter() - t0
        month_end = min(end, start + dt.timedelta(days=30))
        t0 = time.perf_counter()
        usage_rows(path, "day", start, month_end, key_id=one)
        usage_rows(path, "article", start, month_end, key_id=one, limit=1000)
        timings["api_usage_one_key_month_s"] = time.perf_counter() - t0
        return {
            "rows": args.rows,
            "keys": args.keys,
            "days": args.days,
            "fill_s": round(fill_s, 1),
            "db_bytes": dir_size_bytes(path),
            "keys_reported": len(report),
            **{k: round(v, 3) for k, v in timings.items()},
        }


# -- output ---------------------------------------------------------------------------------------


def _markdown(data: dict[str, Any]) -> str:
    parts = ["### Usage metering overhead and report time (issue 10)"]
    runs = data.get("runs") or []
    if runs:
        rows = []
        for clients in sorted({r["clients"] for r in runs}):
            off = next(r for r in runs if r["clients"] == clients and not r["metering"])
            on = next(r for r in runs if r["clients"] == clients and r["metering"])
            rows.append([clients, off["qps"], on["qps"], off["p50_ms"], on["p50_ms"],
                         round(on["p50_ms"] - off["p50_ms"], 1), off["p99_ms"], on["p99_ms"],
                         off["errors"] + on["errors"]])  # fmt: skip
        parts.append(
            f"`POST /v1/search` hybrid, k={data['k']}, with an API key with quotas; wrk, "
            f"{data['duration']} s per run, metering off and on alternated (two servers on "
            f"`{data['index']}`). Target: ≤ 1 ms added at p50.\n\n"
            + md_table(
                [
                    "clients",
                    "QPS off",
                    "QPS on",
                    "p50 off ms",
                    "p50 on ms",
                    "Δ p50 ms",
                    "p99 off ms",
                    "p99 on ms",
                    "errors",
                ],
                rows,
            )
        )
    report = data.get("report")
    if report:
        parts.append(
            f"Report on {report['rows']:,} metered rows ({report['keys']} keys × "
            f"{report['days']} days; usage db {report['db_bytes'] / 1e6:.0f} MB, filled in "
            f"{report['fill_s']} s):\n\n"
            + md_table(
                ["query", "seconds"],
                [
                    [
                        "`wikirag usage report` (all keys, top 10 articles each)",
                        report["report_all_keys_s"],
                    ],
                    ["`wikirag usage report --key` (one key)", report["report_one_key_s"]],
                    [
                        "`GET /v1/usage` queries (one key, one month: by day + by article)",
                        report["api_usage_one_key_month_s"],
                    ],
                ],
            )
        )
    parts.append(machine_line(data["machine"], data["load"]))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, default=ROOT / "var" / "samples" / "index",
                        help="published index to serve (default var/samples/index)")  # fmt: skip
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up seconds per server")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--questions", type=int, default=1278, help="distinct queries cycled")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10_000_000, help="synthetic metered rows")
    parser.add_argument("--keys", type=int, default=100, help="keys in the synthetic rows")
    parser.add_argument("--days", type=int, default=90, help="days in the synthetic rows")
    parser.add_argument("--workdir", type=Path, help="where the synthetic usage db is written")
    parser.add_argument("--skip-http", action="store_true", help="only the report time")
    parser.add_argument("--skip-report", action="store_true", help="only the HTTP overhead")
    parser.add_argument("--no-write", action="store_true", help="print only; write no results")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help=f"only rewrite the RESULTS.md section from results/{NAME}.json (no measurement)",
    )
    args = parser.parse_args(argv)
    if args.markdown_only:
        data = json.loads((RESULTS_DIR / f"{NAME}.json").read_text(encoding="utf-8"))
        update_results_md("metering", _markdown(data))
        return 0
    if not args.skip_http and shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk); or use --skip-http", file=sys.stderr)
        return 2
    info = machine_info()
    with LoadSampler() as load:
        runs = [] if args.skip_http else http_overhead(args)
        report = None if args.skip_report else report_time(args)
    data = {"index": str(args.index), "k": args.k, "duration": args.duration, "runs": runs,
            "report": report, "load": load.summary(), "machine": info}  # fmt: skip
    print(json.dumps({"runs": runs, "report": report}, indent=2))
    if not args.no_write:
        write_result(NAME, data)
        update_results_md("metering", _markdown(data))
    else:
        print(_markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
