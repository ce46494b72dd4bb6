"""The performance table of the README, measured in one run: every figure, the machine it ran on.

Runs each benchmark of this folder as its own process, each on a fresh PostgreSQL database
(created and dropped here) and a Redis database, and prints the figures as JSON and as a
Markdown table. ``--update-readme`` writes the table into README.md between the markers
``<!-- bench:report -->`` and ``<!-- /bench:report -->``.

    python bench/report.py                      # the full table (about 6 minutes on 2 cores)
    python bench/report.py --quick              # smaller audiences, to check that it runs
    python bench/report.py --update-readme --json-out bench/last-report.json

Run it on an otherwise idle machine: every process of the engine, the databases and the
webhook sink share its cores, and anything else running shows in the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
START, END = "<!-- bench:report -->", "<!-- /bench:report -->"


def parse() -> argparse.Namespace:
    """Read the command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL database to connect to for creating the benchmark databases",
    )
    p.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
    )
    p.add_argument("--quick", action="store_true", help="small audiences: checks that it runs")
    p.add_argument("--json-out", type=Path, help="also write the figures to this file")
    p.add_argument("--update-readme", action="store_true", help="write the table into README.md")
    return p.parse_args()


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one benchmark; dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_json(script: str, *args: str) -> dict[str, Any]:
    """Run ``bench/SCRIPT ARGS`` and return the JSON object its last output line holds."""
    command = [sys.executable, str(HERE / script), *args]
    print("$ python bench/" + " ".join([script, *args]), file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench/{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fanout(args: argparse.Namespace, *options: str) -> dict[str, Any]:
    """bench/fanout.py on a fresh database with separate scheduler and worker processes."""
    with fresh_database(args.pg_admin_url) as url:
        return run_json(
            "fanout.py", "--database-url", url, "--broker-url", args.redis_url, *options
        )


def wait_for_quiet(limit: float = 1.0, most_s: float = 300.0) -> float:
    """Wait (at most ``most_s``) until the 1-minute load average is under ``limit``: the
    figures are only comparable on an otherwise idle machine. Returns the load average."""
    deadline = time.monotonic() + most_s
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def machine(args: argparse.Namespace) -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    admin = sa.create_engine(args.pg_admin_url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        postgres = str(conn.scalar(sa.text("SHOW server_version")))
    admin.dispose()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(memory_kb / 1024 / 1024),
        "python": platform.python_version(),
        "postgresql": postgres,
        "load_before": round(wait_for_quiet(), 2),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of the table."""
    sizes = (20_000, 50_000, 100_000) if args.quick else (100_000, 300_000, 1_000_000)
    figures: dict[str, Any] = {"machine": machine(args), "quick": args.quick}
    null = []
    for i, n in enumerate(sizes):
        probe = ["--probe-progress"] if i == 1 else []  # the middle run: progress under load
        null.append(fanout(args, "--channel", "null", "--contacts", str(n), *probe))
    figures["null"] = null
    with fresh_database(args.pg_admin_url) as url:
        naive = "1000" if args.quick else "5000"
        figures["naive"] = run_json("naive.py", "--contacts", naive, "--database-url", url)
    webhook_n = "20000" if args.quick else "100000"
    figures["webhook"] = fanout(args, "--channel", "webhook", "--contacts", webhook_n)
    figures["bare_client"] = run_json(
        "http_clients.py", "--bare", "--processes", "2", "--concurrency", "64",
        "--requests", "20000" if args.quick else "60000",
    )  # fmt: skip
    limited = "10000" if args.quick else "40000"
    figures["rate_limit"] = fanout(
        args, "--channel", "null", "--contacts", limited, "--rate", "2000", "--processes", "4"
    )
    with fresh_database(args.pg_admin_url) as url:
        figures["scheduler_lag"] = run_json(
            "scheduler_lag.py", "--runs", "10" if args.quick else "40",
            "--database-url", url, "--broker-url", args.redis_url,
        )  # fmt: skip
    return figures


def _n(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def markdown(f: dict[str, Any]) -> str:
    """The figures as the README's table."""
    m, null, naive, webhook = f["machine"], f["null"], f["naive"], f["webhook"]
    bare, limited, lag, probed = f["bare_client"], f["rate_limit"], f["scheduler_lag"], f["null"][1]
    sizes = " / ".join(f"{r['contacts']:,}" for r in null)
    rates = " / ".join(_n(r["deliveries_per_s"]) for r in null)
    steady = " / ".join(_n(r["steady_deliveries_per_s"]) for r in null)
    times = max(r["deliveries_per_s"] for r in null) / naive["deliveries_per_s"]
    share = 100 * webhook["deliveries_per_s"] / bare["requests_per_s"]
    reads = (probed["progress_p50_ms"], probed["progress_p99_ms"], probed["progress_max_ms"])
    lags = (lag["lag_p50_s"], lag["lag_p99_s"], lag["lag_max_s"])
    rss = (null[0]["peak_worker_rss_mb"], null[-1]["peak_worker_rss_mb"])
    rows = [
        (
            f"`null` channel, {sizes} contacts (whole run; steady part)",
            f"{rates}; {steady} deliveries/s",
        ),
        (
            "the naive design: one message and one commit per contact "
            f"({naive['threads']} threads, {naive['contacts']:,} contacts)",
            f"{_n(naive['deliveries_per_s'])} deliveries/s (the fan-out is {times:,.0f} times it)",
        ),
        (
            "`webhook` channel to the loopback sink (`bench/sink.py`), "
            f"{webhook['contacts']:,} contacts",
            f"{_n(webhook['deliveries_per_s'])} deliveries/s ({share:.0f} % of the bare client)",
        ),
        (
            "a bare aiohttp client, 2 processes x 64 connections, same sink, same bodies",
            f"{_n(bare['requests_per_s'])} requests/s",
        ),
        (
            f"peak worker RSS, {null[0]['contacts']:,} to {null[-1]['contacts']:,} contacts",
            f"{rss[0]:.0f} to {rss[1]:.0f} MB",
        ),
        (
            f"a progress read during the {probed['contacts']:,}-contact run "
            f"(p50 / p99 / max of {probed['progress_reads']})",
            " / ".join(str(v) for v in reads) + " ms",
        ),
        (
            f"a 2,000/s rate limit over 4 worker processes ({limited['contacts']:,} contacts): "
            "steady part; busiest second",
            f"{_n(limited['steady_deliveries_per_s'])}/s; {limited['busiest_second']:,}",
        ),
        (
            "scheduler lag, execution due to first delivery recorded "
            f"(p50 / p99 / max of {lag['runs']} runs)",
            " / ".join(f"{v:.2f}" for v in lags) + " s",
        ),
    ]
    lines = ["| what | measured |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    where = (
        f"Measured {m['date']} at commit `{m['commit']}` by `python bench/report.py"
        f"{' --quick' if f['quick'] else ''}` on {m['cpus']} CPUs ({m['cpu']}), "
        f"{m['memory_gb']} GB, Python {m['python']}, PostgreSQL {m['postgresql']} and Redis on "
        "loopback; `campaign worker --processes 2 --threads 8` (4 processes for the rate limit), "
        "chunks of 1,000. The engine's processes, the databases and the sink share those CPUs "
        f"(1-minute load average {m['load_before']} when it started)."
    )
    return where + "\n\n" + "\n".join(lines) + "\n"


def update_readme(text: str) -> None:
    """Replace the README's table between the markers."""
    readme = README.read_text()
    head, found, rest = readme.partition(START)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise SystemExit(f"README.md has no {START} … {END} markers")
    README.write_text(f"{head}{START}\n{text}{END}{tail}")


def main() -> None:
    """Measure, print, and write what was asked."""
    args = parse()
    figures = measure(args)
    print(json.dumps(figures, indent=2))
    text = markdown(figures)
    print(text)
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n")
    if args.update_readme:
        update_readme(text)


if __name__ == "__main__":
    main()
