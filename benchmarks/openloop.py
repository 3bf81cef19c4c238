"""An open-loop HTTP load generator: requests at a fixed rate, latency from the scheduled time.

wrk keeps N connections busy (a closed loop): when the server slows down, wrk slows down with
it, and the requests it did not send never count as slow. That measures saturation. To ask
"does the service hold p99 ≤ 100 ms at 100 requests/s from 16 clients?", requests must be
*scheduled* at that rate whatever the server does, and each latency measured from the moment
the request was due, not from when a free connection finally sent it (the coordinated-omission
correction of wrk2 and HdrHistogram). This module does that with asyncio and raw HTTP/1.1
keep-alive connections, so that the generator itself costs little CPU.

Run it as a separate process (the benchmarks do)::

    python -m benchmarks.openloop --url http://127.0.0.1:8000/v1/search \\
        --bodies bodies.jsonl --rate 100 --connections 16 --seconds 30

It prints one JSON object: requests sent, completed, errors (non-2xx or transport), the
achieved rate, and latency percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    sent: int = 0


def request_bytes(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_status(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (headers, then a Content-Length body); its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _worker(
    address: tuple[str, int],
    queue: asyncio.Queue[tuple[float, bytes] | None],
    tally: Tally,
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while (item := await queue.get()) is not None:
        due, payload = item
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(*address)
            writer.write(payload)
            status = await read_status(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            tally.transport_errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        tally.latencies_ms.append((time.perf_counter() - due) * 1000)
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
    if writer is not None:
        writer.close()


async def run(
    url: str,
    bodies: list[bytes],
    *,
    rate: float,
    seconds: float,
    connections: int,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Send ``rate × seconds`` requests, one every ``1/rate`` s, over ``connections`` keep-alive
    connections (a request waits for a free connection; its latency counts from when it was
    due), cycling through ``bodies``."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    payloads = [
        request_bytes(parts.netloc, parts.path or "/", body, headers or {}) for body in bodies
    ]
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    tally = Tally()
    workers = [asyncio.create_task(_worker(address, queue, tally)) for _ in range(connections)]
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, payloads[i % len(payloads)]))
        tally.sent += 1
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    return summary(tally, elapsed, rate=rate, connections=connections)


def summary(tally: Tally, elapsed: float, *, rate: float, connections: int) -> dict[str, Any]:
    lat = np.asarray(tally.latencies_ms or [float("nan")])
    ok = sum(n for status, n in tally.statuses.items() if 200 <= status < 300)
    return {
        "target_rate": rate,
        "connections": connections,
        "sent": tally.sent,
        "completed": len(tally.latencies_ms),
        "ok": ok,
        "errors": tally.transport_errors + len(tally.latencies_ms) - ok,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "achieved_rate": round(len(tally.latencies_ms) / elapsed, 1),
        "latency_ms": {f"p{q}": round(float(np.percentile(lat, q)), 2) for q in (50, 90, 99, 99.9)}
        | {"max": round(float(lat.max()), 2), "mean": round(float(lat.mean()), 2)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.openloop", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--url", required=True, help="POST target, e.g. http://127.0.0.1:8000/v1/search"
    )
    parser.add_argument(
        "--bodies", type=Path, required=True, help="JSON lines: one request body each"
    )
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to send")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--header", action="append", default=[], help="extra header 'Name: value'")
    args = parser.parse_args(argv)
    bodies = [line.encode() for line in args.bodies.read_text().splitlines() if line.strip()]
    if not bodies or args.rate <= 0 or args.connections < 1:
        parser.error("need at least one body, a positive rate and at least one connection")
    headers = dict(h.split(":", 1) for h in args.header)
    result = asyncio.run(
        run(
            args.url,
            bodies,
            rate=args.rate,
            seconds=args.seconds,
            connections=args.connections,
            headers={k.strip(): v.strip() for k, v in headers.items()},
        )
    )
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
