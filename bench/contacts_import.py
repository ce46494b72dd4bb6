"""CSV import/export benchmark: N generated rows imported, imported again, exported.

Writes a CSV of N rows to a temporary file (one in 1,000 with an invalid email), imports it
through ``engine.audience.contact_import`` into a fresh organization's list, imports the same file
again (every row matches, nothing changes) and exports the list. Prints one JSON object: rows/s
of each phase and the peak resident memory of this process (the file is never loaded whole).

Examples:
    python bench/contacts_import.py --rows 100000                     # a temporary SQLite file
    python bench/contacts_import.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/bench_import   # 1,000,000 rows
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from databases import ensure_database

from engine.audience.contact_export import export_contacts
from engine.audience.contact_import import BATCH_SIZE, ImportResult, import_contacts
from engine.audience.lists import get_or_create_list
from engine.campaigns.campaign import get_or_create_organization
from engine.config import Settings
from engine.db import migrate, session_scope
from engine.logging import configure_logging
from engine.runtime import Runtime

#: One row in this many has an invalid email (errors are part of the work).
INVALID_EVERY = 1000


def parse() -> argparse.Namespace:
    """Read the command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--no-reimport", action="store_true", help="skip the second import")
    return p.parse_args()


def write_csv(path: Path, rows: int) -> None:
    """Write ``rows`` generated contacts: email, phone, name, tags and two custom fields."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["email", "phone", "name", "tags", "plan", "city"])
        for i in range(rows):
            email = f"user{i}.example.com" if i % INVALID_EVERY == 7 else f"User{i}@Example.com"
            tags = "vip;beta" if i % 10 == 0 else ("newsletter" if i % 3 == 0 else "")
            plan = "pro" if i % 3 == 0 else "free"
            out.writerow([email, f"+1555{i:07d}", f"User {i}", tags, plan, f"city-{i % 500}"])


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    return psutil.Process().memory_info().rss / 1e6


def timed_import(
    rt: Runtime, org_id: str, list_id: int, path: Path, batch: int
) -> tuple[ImportResult, float, float]:
    """Import the file; return the result, the seconds it took and the peak RSS seen (MB)."""
    peak = rss_mb()

    def sample(_: ImportResult) -> None:
        nonlocal peak
        peak = max(peak, rss_mb())

    start = time.monotonic()
    with session_scope(rt.engine) as session, path.open(newline="", encoding="utf-8") as f:
        result = import_contacts(session, org_id, list_id, f, on_progress=sample, batch_size=batch)
    return result, time.monotonic() - start, peak


def timed_export(rt: Runtime, org_id: str, list_id: int, path: Path) -> tuple[int, float, float]:
    """Export the list to ``path``; return the contacts written, seconds and peak RSS (MB)."""
    peak, written = rss_mb(), 0

    def sample(count: int) -> None:
        nonlocal peak, written
        peak, written = max(peak, rss_mb()), count

    start = time.monotonic()
    with session_scope(rt.engine) as session, path.open("w", newline="", encoding="utf-8") as f:
        f.writelines(export_contacts(session, org_id, list_id, on_progress=sample))
    return written, time.monotonic() - start, peak


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    workdir = Path(tempfile.mkdtemp(prefix="contacts-import-"))
    db_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    ensure_database(db_url)
    settings = Settings(database_url=db_url, log_level="WARNING")
    configure_logging(settings.log_format, settings.log_level)
    migrate(db_url)
    rt = Runtime.from_settings(settings)
    source = workdir / "contacts.csv"
    write_csv(source, args.rows)
    with session_scope(rt.engine) as session:
        org = get_or_create_organization(session, f"bench-{time.time_ns()}")
        list_id = get_or_create_list(session, org.id, "bench").id
    assert list_id is not None
    rss_before = rss_mb()
    first, first_s, first_peak = timed_import(rt, org.id, list_id, source, args.batch_size)
    figures: dict[str, Any] = {
        "database": db_url.split(":", 1)[0],
        "rows": first.rows,
        "file_mb": round(source.stat().st_size / 1e6, 1),
        "batch_size": args.batch_size,
        "import": _phase(first, first_s),
    }
    peaks = [first_peak]
    if not args.no_reimport:
        again, again_s, again_peak = timed_import(rt, org.id, list_id, source, args.batch_size)
        figures["reimport"] = _phase(again, again_s)
        peaks.append(again_peak)
    written, export_s, export_peak = timed_export(rt, org.id, list_id, workdir / "export.csv")
    figures["export"] = {
        "contacts": written,
        "seconds": round(export_s, 1),
        "rows_per_s": round(written / export_s),
    }
    figures["rss_before_import_mb"] = round(rss_before, 1)
    figures["peak_rss_during_import_export_mb"] = round(max(*peaks, export_peak), 1)
    figures["peak_rss_process_mb"] = round(_max_rss_mb(), 1)
    rt.close()
    for leftover in workdir.iterdir():
        leftover.unlink()
    workdir.rmdir()
    return figures


def _phase(result: ImportResult, seconds: float) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 1),
        "rows_per_s": round(result.rows / seconds),
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "errors": result.error_count,
    }


def _max_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


if __name__ == "__main__":
    print(json.dumps(run(parse())))
