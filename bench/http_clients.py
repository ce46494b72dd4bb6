"""Which HTTP client should the webhook channel use? POSTs to the loopback sink, per client.

Prints one JSON line per client with requests/s. Start nothing first: the sink is spawned here.
    python bench/http_clients.py --requests 5000 --concurrency 16
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--port", type=int, default=8809)
    args = parser.parse_args()
    sink = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("sink.py")), "--port", str(args.port)]
    )
    time.sleep(0.5)
    url = f"http://127.0.0.1:{args.port}/hook"
    try:
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
