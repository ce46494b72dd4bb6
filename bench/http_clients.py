"""Which HTTP client should the webhook channel use? POSTs to the loopback sink, per client.

Prints one JSON line per client with requests/s. Start nothing first: the sink is spawned here.
    python bench/http_clients.py --requests 5000 --concurrency 16
    # the bare-client ceiling the webhook channel is compared with: 2 processes x 64 connections
    python bench/http_clients.py --bare --processes 2 --concurrency 64 --requests 60000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

BODY = json.dumps(
    {"idempotency_key": "exe:tp:1", "to": {"id": 1}, "message": {"text": "hi"}}
).encode()
#: What the webhook channel POSTs for one contact of bench/fanout.py's campaign.
WEBHOOK_BODY = json.dumps(
    {
        "idempotency_key": "exe_1a22a6f3e93a086d6406b:tpt_1a22a6f3e93a086d6406c:123456",
        "execution_id": "exe_1a22a6f3e93a086d6406b",
        "campaign_id": "cmp_1a22a6f3e93a086d6406d",
        "touchpoint_id": "tpt_1a22a6f3e93a086d6406c",
        "contact_id": 123456,
        "to": {"id": 123456, "email": "contact123456@example.com", "phone": None, "name": "Ana"},
        "message": {"text": "Hi Ana"},
    }
).encode()


def httpx_threads(url: str, n: int, concurrency: int) -> float:
    """httpx sync Client shared by a thread pool (what the webhook channel does today)."""
    with httpx.Client(limits=httpx.Limits(max_connections=concurrency)) as client:

        def post(_: int) -> int:
            return client.post(
                url, content=BODY, headers={"Content-Type": "application/json"}
            ).status_code

        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            codes = list(pool.map(post, range(n)))
        elapsed = time.perf_counter() - start
    assert set(codes) == {200}
    return n / elapsed


def httpx_async(url: str, n: int, concurrency: int) -> float:
    """httpx AsyncClient with ``concurrency`` requests in flight."""

    async def main() -> float:
        sem = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

            async def post() -> int:
                async with sem:
                    r = await client.post(
                        url, content=BODY, headers={"Content-Type": "application/json"}
                    )
                    return r.status_code

            start = time.perf_counter()
            codes = await asyncio.gather(*(post() for _ in range(n)))
            elapsed = time.perf_counter() - start
        assert set(codes) == {200}
        return n / elapsed

    return asyncio.run(main())


def aiohttp_async(url: str, n: int, concurrency: int) -> float:
    """aiohttp ClientSession with ``concurrency`` requests in flight."""
    import aiohttp

    async def main() -> float:
        sem = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def post() -> int:
                async with (
                    sem,
                    session.post(url, data=BODY, headers={"Content-Type": "application/json"}) as r,
                ):
                    await r.read()
                    return r.status

            start = time.perf_counter()
            codes = await asyncio.gather(*(post() for _ in range(n)))
            elapsed = time.perf_counter() - start
        assert set(codes) == {200}
        return n / elapsed

    return asyncio.run(main())


def _bare_process(url: str, n: int, connections: int) -> tuple[float, float]:
    """One process of :func:`bare_aiohttp`: its first and last moment (``time.time()``)."""
    import aiohttp

    async def main() -> tuple[float, float]:
        sem = asyncio.Semaphore(connections)
        headers = {"Content-Type": "application/json", "Idempotency-Key": "exe:tp:1"}
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def post() -> int:
                async with sem, session.post(url, data=WEBHOOK_BODY, headers=headers) as r:
                    await r.read()
                    return r.status

            start = time.time()
            codes = await asyncio.gather(*(post() for _ in range(n)))
            end = time.time()
        assert set(codes) == {200}
        return start, end

    return asyncio.run(main())


def bare_aiohttp(url: str, n: int, processes: int, connections: int) -> float:
    """The ceiling of a bare aiohttp client: ``processes`` processes with ``connections``
    connections each, POSTing the webhook channel's body; requests/s over the whole span."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(processes) as pool:
        spans = list(
            pool.map(_bare_process, [url] * processes, [n // processes] * processes,
                     [connections] * processes)
        )  # fmt: skip
    return (n // processes) * processes / (max(e for _, e in spans) - min(s for s, _ in spans))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--port", type=int, default=8809)
    parser.add_argument("--bare", action="store_true", help="only the bare aiohttp client")
    parser.add_argument("--processes", type=int, default=2, help="processes of --bare")
    args = parser.parse_args()
    sink = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("sink.py")), "--port", str(args.port)]
    )
    time.sleep(0.5)
    url = f"http://127.0.0.1:{args.port}/hook"
    try:
        if args.bare:
            rate = bare_aiohttp(url, args.requests, args.processes, args.concurrency)
            figures = {"processes": args.processes, "connections": args.concurrency}
            print(json.dumps({"client": "bare_aiohttp", **figures, "requests_per_s": round(rate)}))
            sys.exit(0)
        for fn in (httpx_threads, httpx_async, aiohttp_async):
            try:
                rate = fn(url, args.requests, args.concurrency)
                print(
                    json.dumps(
                        {
                            "client": fn.__name__,
                            "concurrency": args.concurrency,
                            "requests_per_s": round(rate),
                        }
                    )
                )
            except ImportError as exc:
                print(json.dumps({"client": fn.__name__, "error": str(exc)}))
    finally:
        sink.terminate()
