"""HTTP load on ``POST /v1/search`` (hybrid) from a separate process: QPS and latency
percentiles at 1 and 16 concurrent clients, with wrk (Debian package ``wrk``) against a real
``wikirag serve`` on a loopback port.

Each request body is a real question (SQuAD dev), all 1,278 of them cycled by a generated Lua
script: more than the service's query-embedding LRU cache holds (1,024), so a cyclic pass
never hits it and every request pays for its query embedding. The load is
bounded in time (``--seconds`` per run) and targets 127.0.0.1 only.

    .venv/bin/python -m benchmarks.http_bench --index var/samples/index --name sample
    .venv/bin/python -m benchmarks.http_bench --index var/bench-1m --name synthetic-1m

Two kinds of run:

* closed loop (wrk, ``--clients``): N connections each sending its next request as soon as
  the last one is answered — the saturation throughput and the latency at saturation;
* open loop (:mod:`benchmarks.openloop`, ``--rates``): requests *scheduled* at a fixed rate
  over 16 connections, each latency measured from when the request was due — whether the
  service holds a given rate and what its tail latency is there.

Target (issue 4): ≥ 100 QPS with p99 ≤ 100 ms at 16 clients on the 1 M-passage index.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks._common import (
    ROOT,
    SAMPLES,
    LoadSampler,
    machine_info,
    machine_line,
    md_table,
    update_results_md,
    write_result,
)

QUESTIONS = SAMPLES / "squad" / "squad-dev-questions.jsonl"
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lua_script(path: Path, n_questions: int, k: int) -> None:
    """A wrk script cycling through real questions as JSON bodies."""
    questions = []
    with QUESTIONS.open(encoding="utf-8") as handle:
        for line in handle:
            questions.append(json.loads(line)["question"])
            if len(questions) == n_questions:
                break
    bodies = [json.dumps({"query": q, "k": k, "mode": "hybrid"}) for q in questions]
    entries = ",\n".join("  " + json.dumps(b) for b in bodies)
    path.write_text(
        "local bodies = {\n" + entries + "\n}\n"
        "local i = 0\n"
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n"
        "  i = (i % #bodies) + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\n"
        "end\n"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("JSON {\\"requests\\": %d, \\"errors\\": %d, '
        '\\"non2xx\\": %d, \\"p50\\": %f, \\"p90\\": %f, \\"p99\\": %f, \\"max\\": %f, '
        '\\"duration_us\\": %d}\\n", summary.requests, summary.errors.status + '
        "summary.errors.connect + summary.errors.read + summary.errors.write + "
        "summary.errors.timeout, summary.errors.status, latency:percentile(50), "
        "latency:percentile(90), latency:percentile(99), latency.max, summary.duration))\n"
        "end\n",
        encoding="utf-8",
    )


def wait_ready(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"service at {url} did not become ready in {timeout:.0f} s")


def bodies_file(path: Path, n_questions: int, k: int) -> None:
    """The same request bodies as :func:`lua_script`, one JSON per line (open-loop runs)."""
    with QUESTIONS.open(encoding="utf-8") as handle, path.open("w", encoding="utf-8") as out:
        for _, line in zip(range(n_questions), handle, strict=False):
            body = {"query": json.loads(line)["question"], "k": k, "mode": "hybrid"}
            out.write(json.dumps(body) + "\n")


def run_open_loop(
    url: str, bodies: Path, rate: float, connections: int, seconds: int
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.openloop", "--url", url + "/v1/search",
           "--bodies", str(bodies), "--rate", str(rate), "--connections", str(connections),
           "--seconds", str(seconds)]  # fmt: skip
    raw = json.loads(
        subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    )
    return {
        "clients": connections,
        "target_rate": rate,
        "seconds": seconds,
        "requests": raw["completed"],
        "errors": raw["errors"],
        "qps": raw["achieved_rate"],
        "p50_ms": raw["latency_ms"]["p50"],
        "p90_ms": raw["latency_ms"]["p90"],
        "p99_ms": raw["latency_ms"]["p99"],
        "max_ms": raw["latency_ms"]["max"],
    }


def run_wrk(url: str, script: Path, clients: int, seconds: int) -> dict[str, Any]:
    threads = min(clients, 2)
    cmd = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s",
           "-s", str(script), url + "/v1/search"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"^JSON (\{.*\})$", out, flags=re.M)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    raw = json.loads(match.group(1))
    duration_s = raw["duration_us"] / 1e6
    return {
        "clients": clients,
        "seconds": round(duration_s, 1),
        "requests": raw["requests"],
        "errors": raw["errors"],
        "qps": round(raw["requests"] / duration_s, 1),
        "p50_ms": round(raw["p50"] / 1000, 1),
        "p90_ms": round(raw["p90"] / 1000, 1),
        "p99_ms": round(raw["p99"] / 1000, 1),
        "max_ms": round(raw["max"] / 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="published index directory")
    parser.add_argument("--name", default="sample", help="label of this index in the results")
    parser.add_argument("--seconds", type=int, default=20, help="duration of each wrk run")
    parser.add_argument(
        "--clients",
        type=int,
        nargs="*",
        default=[1, 16],
        help="closed-loop (wrk) runs with these client counts; none: skip",
    )
    parser.add_argument("--questions", type=int, default=1278, help="distinct queries cycled")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument(
        "--rates", type=float, nargs="*", default=[100.0],
        help="open-loop runs at these request rates (16 connections); none: skip",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--query-encoder", choices=["onnx", "torch"], default="onnx",
        help="the service's query encoder (WIKIRAG_QUERY_ENCODER)",
    )  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print only; write no results")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "WIKIRAG_RATE_LIMIT_PER_MINUTE": "0",
           "WIKIRAG_QUERY_ENCODER": args.query_encoder}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--index", str(args.index), "--host",
         "127.0.0.1", "--port", str(port), "--open-access", "--workers", str(args.workers)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    runs: list[dict[str, Any]] = []
    try:
        wait_ready(url, timeout=300)
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "search.lua"
            lua_script(script, args.questions, args.k)
            bodies = Path(tmp) / "bodies.jsonl"
            bodies_file(bodies, args.questions, args.k)
            run_wrk(url, script, 16, 10)  # warm-up: every worker, the indexes paged in
            with LoadSampler() as load:
                for clients in args.clients:
                    runs.append({"loop": "closed", **run_wrk(url, script, clients, args.seconds)})
                    print(json.dumps(runs[-1]))
                for rate in args.rates:
                    runs.append(
                        {"loop": "open", **run_open_loop(url, bodies, rate, 16, args.seconds)}
                    )
                    print(json.dumps(runs[-1]))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    info = machine_info()
    result = {"index": str(args.index), "name": args.name, "k": args.k, "runs": runs,
              "workers": args.workers, "query_encoder": args.query_encoder,
              "load": load.summary(), "machine": info}  # fmt: skip
    if args.no_write:
        return 0
    write_result(f"http_bench_{args.name}", result)
    rows = [[_loop_label(r), r["clients"], r["qps"], r["p50_ms"], r["p90_ms"], r["p99_ms"],
             r["errors"]] for r in runs]  # fmt: skip
    body = (
        f"### HTTP load, `POST /v1/search` hybrid, k={args.k} ({args.name} index)\n\n"
        f"Against `wikirag serve --workers {args.workers}` (query encoder: "
        f"{args.query_encoder}) on 127.0.0.1 from a separate process, {args.seconds} s per "
        f"run, {args.questions} distinct SQuAD questions cycled. Closed loop: wrk, each "
        "client sends its next request when the last is answered (saturation). Open loop: "
        "`benchmarks/openloop.py`, requests scheduled at a fixed rate over 16 connections, "
        "latency counted from when each was due.\n\n"
        + md_table(["run", "clients", "QPS", "p50 ms", "p90 ms", "p99 ms", "errors"], rows)
        + "\n\n"
        + machine_line(info, result["load"])
    )
    update_results_md(f"http-{args.name}", body)
    return 0


def _loop_label(run: dict[str, Any]) -> str:
    if run.get("loop") == "open":
        return f"open loop at {run['target_rate']:g}/s"
    return "closed loop (wrk)"


if __name__ == "__main__":
    sys.exit(main())
