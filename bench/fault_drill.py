"""Fault drill: a campaign keeps its promises while workers die and Redis and PostgreSQL restart.

Two ``campaign scheduler`` processes and several ``campaign worker`` processes run one webhook
campaign on a private PostgreSQL and a private Redis (started here, on free ports, so they can be
restarted without disturbing anything else). A loopback receiver counts every
``Idempotency-Key``. Mid-run, worker processes are SIGKILLed (and replaced), Redis is stopped and
started again (it keeps nothing on disk: queued broker messages are lost, as in a real restart),
and PostgreSQL is stopped (``immediate``: a crash) and started again.

It prints one JSON report and exits non-zero unless: the execution completed, processed ==
total, every contact was reached, every key the receiver accepted is recorded as sent, and the
re-sends are no more than the batches in flight in the killed workers.

Examples:
    python bench/fault_drill.py --contacts 80000 --kills 3 --pg-outage 8 --redis-outage 8
    python bench/fault_drill.py --broker amqp --contacts 80000 --kills 0 --pg-outage 0 \\
        --redis-outage 8
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.audience.contacts import add_contacts, demo_contacts
from engine.campaigns.campaign import TouchpointSpec, create_campaign, get_or_create_organization
from engine.config import Settings, get_settings
from engine.db import make_engine, migrate, session_scope
from engine.execution.runs import start_execution
from engine.logging import configure_logging
from engine.models import Delivery, Execution
from engine.testing import stop_process_groups

#: Messages a worker thread has in flight at most: one send batch (no rate below 500/s).
BATCH = 100


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temporary folder, on its own port."""

    def __init__(self, root: Path) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL server binaries not found (/usr/lib/postgresql)")
        self.bin = Path(found[-1]).parent
        self.data = root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            shutil.chown(self.data, "postgres")
        subprocess.run(
            _as_postgres(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.data / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: as a crash; recovery runs at the next start)."""
        subprocess.run(
            _as_postgres(
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]
            ),
            check=False,
            capture_output=True,
        )


class PrivateRedis:
    """A redis-server on its own port that keeps nothing on disk (like this machine's)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it answers."""
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Kill it: everything it held (queued messages, rate-limit state) is gone."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class AmqpVhost:
    """A RabbitMQ virtual host of its own on the machine's RabbitMQ (queues nobody else uses)."""

    def __init__(self, base_url: str) -> None:
        self.name = f"drill-{uuid.uuid4().hex[:8]}"
        self.url = base_url.rsplit("/", 1)[0] + f"/{self.name}"
        self._ctl(["add_vhost", self.name])
        self._ctl(["set_permissions", "-p", self.name, "guest", ".*", ".*", ".*"])

    @staticmethod
    def _ctl(args: list[str]) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    def delete(self) -> None:
        """Remove the virtual host and its queues."""
        self._ctl(["delete_vhost", self.name])


class KeyCounter:
    """A loopback HTTP receiver that answers 200 and counts each ``Idempotency-Key``."""

    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, key = 0, ""
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    elif name.lower() == b"idempotency-key":
                        key = value.strip().decode()
                if length:
                    await reader.readexactly(length)
                self.keys[key] += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        """Stop serving."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@dataclass
class Drill:
    """One drill's plan: what to run and which faults to inject."""

    contacts: int = 80_000
    broker: str = "redis"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    workers: int = 2
    threads: int = 8
    kills: int = 3
    redis_outage_s: float = 8.0
    pg_outage_s: float = 8.0
    rate_per_s: float = 20_000.0
    timeout_s: float = 900.0
    events: list[dict[str, Any]] = field(default_factory=list)


#: The receiver listens on loopback: allowed on purpose (the outbound guard refuses it by default),
#: for the workers and for this process, which checks the campaign when it executes it.
RECEIVER_NETWORKS = "127.0.0.0/8"


def _env(drill: Drill, database_url: str, broker_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "BROKER_URL": broker_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "fault-drill-" + uuid.uuid4().hex,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "CHUNK_SIZE": "500",
        "SCHEDULER_INTERVAL_S": "0.2",
        "MAX_IN_FLIGHT_CHUNKS": "16",
        # A killed worker's chunks come back after 10 s; broker messages lost with Redis after 20.
        "HEARTBEAT_STALE_S": "10",
        "QUEUED_STALE_S": "20",
        "RATE_LIMITS": "{}",
        "OUTBOUND_ALLOWED_NETWORKS": RECEIVER_NETWORKS,
    }


def _progress(database_url: str) -> tuple[str, int, int] | None:
    """``(status, processed, total)`` of the drill's execution; ``None`` while the store is down."""
    engine = make_engine(
        database_url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 2}
    )
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(Execution.status, Execution.processed, Execution.total))
            first = row.first()
            return (str(first[0]), int(first[1]), int(first[2])) if first else None
    except sa.exc.OperationalError:
        return None
    finally:
        engine.dispose()


class _Stage:
    """The drill's processes and services, and the faults it injects into them."""

    def __init__(self, drill: Drill, root: Path, log: Callable[[str], None]) -> None:
        self.drill, self.root, self.log = drill, root, log
        self.postgres = PrivatePostgres(root / "pg")
        self.redis = PrivateRedis()
        self.receiver = KeyCounter()
        self.vhost = AmqpVhost(drill.amqp_url) if drill.broker == "amqp" else None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.env: dict[str, str] = {}
        self.started = time.monotonic()

    def event(self, what: str, **details: Any) -> None:
        """Note what happened, with the seconds since the start."""
        self.drill.events.append(
            {"t": round(time.monotonic() - self.started, 1), "event": what, **details}
        )
        self.log(f"[{self.drill.events[-1]['t']:7.1f}s] {what} {details or ''}")

    def up(self) -> None:
        """Start the services, migrate, and set the processes' environment."""
        self.postgres.start()
        self.redis.start()
        migrate(self.postgres.url)
        broker_url = self.vhost.url if self.vhost else self.redis.url
        self.env = _env(self.drill, self.postgres.url, broker_url, self.redis.url)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``campaign ARGS`` in its own process group, its output in a file."""
        out = open(self.root / f"proc-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", *args],
            env=self.env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def start_worker(self) -> None:
        """One more worker process (``--processes 1``, so a kill takes exactly one)."""
        self.workers.append(
            self.start("worker", "--processes", "1", "--threads", str(self.drill.threads))
        )

    def inject(self, fault: str, processed: int) -> None:
        """Kill the oldest worker (and start another), or take Redis or PostgreSQL down."""
        if fault == "kill":
            victim = self.workers.pop(0)
            os.killpg(victim.pid, signal.SIGKILL)
            self.start_worker()
            self.event("worker.killed", processed=processed)
        elif fault == "redis":
            self.redis.stop()
            self.event("redis.down", processed=processed)
            time.sleep(self.drill.redis_outage_s)
            self.redis.start()
            self.event("redis.up")
        else:
            self.postgres.stop()
            self.event("postgres.down", processed=processed)
            time.sleep(self.drill.pg_outage_s)
            self.postgres.start()
            self.event("postgres.up")

    def down(self) -> None:
        """Stop everything the drill started."""
        stop_process_groups(self.procs, grace_s=10)
        self.receiver.close()
        self.redis.stop()
        self.postgres.stop("fast")
        if self.vhost is not None:
            self.vhost.delete()


def run(drill: Drill, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the drill; return its report (``ok`` says whether every promise held)."""
    root = Path(tempfile.mkdtemp(prefix="fault-drill-"))
    root.chmod(0o755)  # the postgres user must reach its data folder inside
    stage = _Stage(drill, root, log)
    try:
        stage.up()
        url = stage.postgres.url
        execution_id = _prepare(drill, url, stage.receiver.url, stage.env["SECRET_KEY"])
        total = drill.contacts
        stage.event("execution.scheduled", execution_id=execution_id, deliveries=total)
        stage.start("scheduler")
        stage.start("scheduler")
        for _ in range(drill.workers):
            stage.start_worker()
        faults = _fault_plan(drill)
        final = None
        deadline = time.monotonic() + drill.timeout_s
        while final is None and time.monotonic() < deadline:
            state = _progress(url)
            if state is not None and state[0] in ("completed", "failed", "cancelled"):
                final = state
            elif state is not None:
                while faults and state[1] >= faults[0][0] * total:
                    stage.inject(faults.pop(0)[1], state[1])
            time.sleep(0.2)
        report = _report(drill, url, execution_id, stage.receiver, final)
        report["elapsed_s"] = round(time.monotonic() - stage.started, 1)
        report["events"] = drill.events
        return report
    finally:
        stage.down()
        shutil.rmtree(root, ignore_errors=True)


def _fault_plan(drill: Drill) -> list[tuple[float, str]]:
    """Faults spread over the run, each at a fraction of the deliveries recorded."""
    faults = ["kill"] * drill.kills
    if drill.redis_outage_s:
        faults.insert(min(1, len(faults)), "redis")
    if drill.pg_outage_s:
        faults.insert(min(3, len(faults)), "postgres")
    step = 0.8 / (len(faults) + 1)
    return [(0.1 + step * (i + 1), fault) for i, fault in enumerate(faults)]


def _prepare(drill: Drill, database_url: str, url: str, secret_key: str) -> str:
    """Create the audience and a one-message webhook campaign; execute it."""
    os.environ["OUTBOUND_ALLOWED_NETWORKS"] = RECEIVER_NETWORKS
    get_settings.cache_clear()
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            org = get_or_create_organization(session, "drill")
            add_contacts(session, org.id, demo_contacts(drill.contacts))
            campaign = create_campaign(
                session,
                org.id,
                "fault drill",
                "webhook",
                [TouchpointSpec(name="only", message={"text": "Hi {{ first_name }}"})],
                channel_config={"url": url, "rate_per_s": drill.rate_per_s},
            )
            return start_execution(session, campaign.id, secret_key=secret_key).id
    finally:
        engine.dispose()


def _report(
    drill: Drill,
    database_url: str,
    execution_id: str,
    receiver: KeyCounter,
    final: tuple[str, int, int] | None,
) -> dict[str, Any]:
    total = drill.contacts
    engine = make_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            sent = {
                f"{execution_id}:{tp}:{contact}"
                for tp, contact in conn.execute(
                    sa.select(Delivery.touchpoint_id, Delivery.contact_id).where(
                        Delivery.status == "sent"
                    )
                )
            }
    finally:
        engine.dispose()
    accepted = set(receiver.keys)
    requests = sum(receiver.keys.values())
    resends = requests - len(accepted)
    in_flight_bound = drill.kills * drill.threads * BATCH
    status, processed, expected = final or ("timeout", -1, total)
    checks = {
        "completed": status == "completed",
        "processed_is_total": processed == expected == total,
        "everyone_reached": len(accepted) == total,
        "accepted_keys_recorded_as_sent": accepted <= sent and len(sent) == total,
        "resends_within_batches_in_flight": resends <= in_flight_bound,
    }
    return {
        "ok": all(checks.values()),
        "checks": checks,
        "broker": drill.broker,
        "status": status,
        "processed": processed,
        "total": total,
        "requests": requests,
        "distinct_keys": len(accepted),
        "resends": resends,
        "resend_bound": in_flight_bound,
        "kills": drill.kills,
        "redis_outage_s": drill.redis_outage_s,
        "pg_outage_s": drill.pg_outage_s,
    }


def main() -> None:
    """Parse options, run the drill, print the report; exit 1 if a promise was broken."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=80_000)
    parser.add_argument("--broker", choices=["redis", "amqp"], default="redis")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1 each)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--redis-outage", type=float, default=8.0, help="seconds (0: none)")
    parser.add_argument("--pg-outage", type=float, default=8.0, help="seconds (0: none)")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    configure_logging("console", "WARNING", cache=False)
    Settings()  # fail early on a bad environment
    drill = Drill(
        contacts=args.contacts,
        broker=args.broker,
        amqp_url=args.amqp_url,
        workers=args.workers,
        threads=args.threads,
        kills=args.kills,
        redis_outage_s=args.redis_outage,
        pg_outage_s=args.pg_outage,
        timeout_s=args.timeout,
    )
    report = run(drill, log=lambda line: print(line, file=sys.stderr))
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
