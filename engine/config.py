"""All configuration in one pydantic-settings class, read from the environment."""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: The development default of ``SECRET_KEY``: public, so production must set its own.
DEV_SECRET_KEY = "dev-only-secret-change-me-in-production-0123456789"
#: Shortest ``SECRET_KEY`` (and fallback) the processes accept outside development mode.
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    """Runtime configuration; every field can be set by an environment variable of its name.

    Example:
        ``DATABASE_URL=postgresql+psycopg://localhost/ce BROKER_URL=redis://127.0.0.1:6379/0``
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    #: SQLAlchemy URL of the store; a local SQLite file by default (embedded mode).
    database_url: str = "sqlite:///campaign-engine.db"
    #: ``memory://`` for dramatiq's in-process broker, or ``redis://…`` / ``amqp://…``.
    broker_url: str = "memory://"
    #: Redis for the shared rate limiter when the broker is not Redis.
    #: Empty: the broker's Redis if it is one, else an in-process limiter.
    redis_url: str = ""
    #: Let worker processes on an AMQP broker limit rates each on its own (no ``REDIS_URL``).
    #: The real rate is then the limit times the number of processes, so workers refuse to
    #: start that way unless this says the operator means it.
    allow_local_rate_limiter: bool = False
    #: ``auto`` (pretty in a terminal, JSON otherwise), ``json`` or ``console``.
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    #: Contacts per chunk: one SQL transaction and one worker message each.
    chunk_size: int = Field(default=500, ge=1, le=10_000)
    #: Most chunks queued or running at once (backpressure; keeps priorities meaningful).
    max_in_flight_chunks: int = Field(default=64, ge=1)
    #: Seconds between scheduler ticks.
    scheduler_interval_s: float = Field(default=0.5, gt=0)
    #: A running chunk whose heartbeat is older than this goes back to pending (its worker
    #: died). Heartbeats are written every sixth of it.
    heartbeat_stale_s: float = Field(default=60.0, gt=0)
    #: A queued chunk not picked up within this many seconds is dispatched again (lost message).
    queued_stale_s: float = Field(default=300.0, gt=0)
    #: A chunk (or a planning) that failed this many times is marked failed with its reason.
    #: Outages of the database, limiter or broker do not count: they are nobody's fault.
    chunk_max_attempts: int = Field(default=5, ge=1)
    #: Seconds a worker waits for an unreachable rate limiter (Redis) inside a chunk before it
    #: gives the chunk back to be tried again after ``outage_backoff_s``.
    limiter_wait_s: float = Field(default=30.0, ge=0)
    #: Seconds a worker keeps retrying to record what it sent while the database is down (the
    #: outcomes are held in memory: a recorded send is never sent again).
    save_wait_s: float = Field(default=600.0, ge=0)
    #: A chunk given back because of an outage is dispatched again after this many seconds.
    outage_backoff_s: float = Field(default=5.0, ge=0)
    #: A running chunk whose sends have not moved for this long (beyond the rate limit's own
    #: waits) stops heartbeating, so the scheduler gives it to another worker.
    chunk_stall_s: float = Field(default=300.0, gt=0)

    #: Deliveries per second per channel; a channel not listed is unlimited.
    rate_limits: dict[str, float] = Field(
        default_factory=lambda: {"telegram": 30.0, "whatsapp": 80.0}
    )
    #: Attempts per message for transient send errors (tenacity, exponential backoff + jitter).
    send_max_attempts: int = Field(default=3, ge=1)
    send_backoff_initial_s: float = 0.2
    send_backoff_max_s: float = 10.0
    #: Messages of one batch in flight at once on a network channel (webhook).
    send_concurrency: int = Field(default=32, ge=1)
    #: Connections per process to one network provider.
    http_max_connections: int = Field(default=64, ge=1)

    #: Key that signs access and refresh tokens (HS256). Set it in production.
    secret_key: str = DEV_SECRET_KEY
    #: Earlier keys, still accepted for verifying tokens and links and for decrypting stored
    #: credentials while ``secret_key`` signs and encrypts everything new (key rotation).
    secret_key_fallbacks: list[str] = Field(default_factory=list)
    #: A development machine: ``campaign api``, ``worker``, ``scheduler`` and ``up`` then start
    #: on the public development ``SECRET_KEY`` (or a short one) instead of refusing to.
    development_mode: bool = False
    access_token_ttl_s: int = Field(default=900, ge=60)
    #: Lifetime of a login: its refresh tokens rotate on use but never outlive it.
    refresh_token_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    #: Failed password checks (login, Basic auth) of one user within ``auth_failure_window_s``
    #: after which its next attempts answer 429 until the oldest failure leaves the window.
    auth_failures_per_user: int = Field(default=10, ge=1)
    #: The same for one client address (every user it tries together).
    auth_failures_per_address: int = Field(default=50, ge=1)
    auth_failure_window_s: int = Field(default=900, ge=1)
    #: The argon2id cost of new password hashes: passes, memory (KiB) and lanes. The default is
    #: RFC 9106's low-memory profile (3, 64 MiB, 4); OWASP's minimum (2, 19 MiB) is the floor.
    password_hash_time_cost: int = Field(default=3, ge=2, le=20)
    password_hash_memory_kib: int = Field(default=65_536, ge=19_456, le=4_194_304)
    password_hash_parallelism: int = Field(default=4, ge=1, le=64)
    #: Largest request body the HTTP API accepts.
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    #: Largest CSV body ``POST /api/v1/lists/{id}/import`` accepts (streamed to a temp file).
    max_import_bytes: int = Field(default=512_000_000, ge=1024)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    #: Where the API is reachable from recipients: the base of click and unsubscribe links.
    public_base_url: str = "http://127.0.0.1:8000"

    #: Most characters one rendered message string may have (subject, text, html each); a
    #: template that would render more is refused at create and fails its contact's delivery
    #: with ``TEMPLATE_TOO_LARGE``. A render may build four times this in intermediate values.
    template_max_rendered_chars: int = Field(default=262_144, ge=1024)
    #: Most loop iterations, calls and filters one rendered message string may run.
    template_max_steps: int = Field(default=100_000, ge=100)

    #: File the ``log`` channel appends JSON lines to.
    log_channel_path: str = "deliveries.jsonl"
    #: Seconds an outbound HTTP request may take.
    http_timeout_s: float = Field(default=10.0, gt=0, le=300)
    #: Internal networks (CIDRs, comma-separated or a JSON list) that outbound connections
    #: (webhooks, providers' ``base_url``, SMTP) may reach on purpose: an SMTP relay on the
    #: LAN, a sink on loopback for tests and benchmarks. Empty: every loopback, private,
    #: link-local, CGNAT, multicast and reserved address is refused (docs/security.md).
    outbound_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Most bytes of a response body read from a provider or a webhook receiver.
    max_response_bytes: int = Field(default=1 << 20, ge=1024)

    @field_validator("outbound_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        """Read ``10.0.0.0/8,127.0.0.1`` or ``["10.0.0.0/8"]``; refuse what is not a network."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if not isinstance(value, list):
            return value
        networks = [str(v).strip() for v in value if str(v).strip()]
        for network in networks:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return networks

    @property
    def verification_keys(self) -> tuple[str, ...]:
        """``secret_key`` then its fallbacks: the first signs and encrypts, all verify and decrypt.

        Example:
            ``Settings(secret_key="new…", secret_key_fallbacks=["old…"]).verification_keys``
            is ``("new…", "old…")``.
        """
        return (self.secret_key, *self.secret_key_fallbacks)


def secret_key_problem(settings: Settings) -> str | None:
    """Why ``settings``' keys would let anyone forge tokens and links or read credentials, if so.

    The public development key and keys shorter than :data:`MIN_SECRET_KEY_LENGTH` are refused,
    as ``SECRET_KEY`` and as a fallback (a fallback still verifies). ``None`` when they are fine,
    whatever ``development_mode`` says: callers decide what development mode allows.
    """
    for name, key in [("SECRET_KEY", settings.secret_key)] + [
        ("a SECRET_KEY_FALLBACKS entry", k) for k in settings.secret_key_fallbacks
    ]:
        if key == DEV_SECRET_KEY:
            return (
                f"DEFAULT_SECRET_KEY: {name} is the public development key, with which anyone "
                "can sign in, forge links and read stored credentials"
            )
        if len(key) < MIN_SECRET_KEY_LENGTH:
            return (
                f"WEAK_SECRET_KEY: {name} has {len(key)} characters; a secret key has at least "
                f"{MIN_SECRET_KEY_LENGTH}"
            )
    return None


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment on first call."""
    return Settings()
