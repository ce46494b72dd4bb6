"""Contact-condition benchmark: ``list_members`` (the contact lists API's list_members route) on
PostgreSQL.

Creates (if missing) and migrates the database, loads N contacts into one organization and one
list (skipped when that list already holds exactly N contacts, unless ``--reload``), runs
``VACUUM ANALYZE``, then times :func:`engine.audience.members.list_members` — the service
``POST /v1/marketing/lists/list_members`` calls: the total count plus a page of 10 — for a
set of conditions. Prints a table of median and p95 milliseconds per condition; with
``--explain``, a summary of each query's plan (which index, or a sequential scan), and with
``--analyze`` the full ``EXPLAIN ANALYZE`` text as well.

Examples:
    python bench/contacts_query.py                      # 1,000,000 contacts, 7 runs each
    python bench/contacts_query.py --explain
    python bench/contacts_query.py --contacts 100000 --reload --runs 5
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from databases import ensure_database
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from engine.audience.conditions import compile_condition
from engine.audience.members import list_members
from engine.campaigns.campaign import get_or_create_organization
from engine.db import make_engine, migrate, session_scope
from engine.models import ApiUser, Contact, ContactField, ContactList

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1/bench_contacts"
ORG_NAME = "bench-contacts"
LIST_NAME = "bench"
SEED = 20261126

_FIRST_NAMES = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy "
    "Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily "
    "Andrew Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa "
    "Timothy Deborah Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan "
    "Cynthia Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan Anna Stephen "
    "Brenda Larry Pamela Justin Emma Scott Nicole Brandon Helen Benjamin Samantha Samuel "
    "Katherine Gregory Christine Alexander Debra Frank Rachel Patrick Carolyn Raymond Janet "
    "Jack Catherine Dennis Maria Jerry Heather Tyler Diane Aaron Ruth Jose Julie Adam "
    "Olivia Nathan Joyce Henry Virginia Zachary Victoria Douglas Kelly Peter Lauren Kyle "
    "Christina Noah Joan Ethan Evelyn Jeremy Judith Walter Megan Christian Andrea Keith "
    "Cheryl Roger Hannah Terry Jacqueline Austin Martha Sean Gloria Gerald Teresa Carl Ann "
    "Harold Sara Dylan Madison Arthur Frances Lawrence Kathryn Jordan Janice Jesse Jean "
    "Bryan Abigail Billy Alice Bruce Judy Gabriel Sophia Joe Grace Logan Denise Alan Amber "
    "Juan Doris Albert Marilyn Willie Danielle Elijah Beverly Wayne Isabella Randy Theresa "
    "Vincent Diana Mason Natalie Roy Brittany Ralph Charlotte Bobby Marie Russell Kayla "
    "Bradley Alexis Philip Lori Eugene Zoe Zara Yusuf Xavier"
)
FIRST = _FIRST_NAMES.split()
_LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell "
    "Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes "
    "Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson "
    "Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James "
    "Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross "
    "Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson "
    "Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton "
    "Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis "
    "Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez "
    "McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman "
    "Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon "
    "Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox "
    "Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver "
    "Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce Hansen Peters "
    "Santos Hart"
)
LAST = _LAST_NAMES.split()
DOMAINS = (
    ("gmail.com", 30),
    ("yahoo.com", 14),
    ("hotmail.com", 9),
    ("outlook.com", 8),
    ("icloud.com", 6),
    ("aol.com", 3),
    ("proton.me", 2),
    ("example.org", 4),
    ("acme-corp.com", 3),
    ("globex.io", 3),
    ("initech.net", 3),
    ("umbrella.co", 3),
    ("mail.ru", 4),
    ("gmx.de", 4),
    ("qq.com", 4),
)
PLANS = (("free", 60), ("basic", 25), ("pro", 12), ("gold", 3))
_CITY_NAMES = "Berlin Paris London Madrid Rome Lisbon Dublin Vienna Prague Warsaw Oslo Austin"
CITIES = _CITY_NAMES.split()
#: Tag name -> share of the contacts carrying it, in percent.
TAGS = {"newsletter": 30, "customer": 20, "vip": 2, "churned": 1}


def parse() -> argparse.Namespace:
    """Read the command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument("--contacts", type=int, default=1_000_000, help="contacts in the list (N)")
    p.add_argument("--runs", type=int, default=7, help="timed runs per condition")
    p.add_argument("--reload", action="store_true", help="reload the contacts even if present")
    p.add_argument("--explain", action="store_true", help="print a plan summary per condition")
    p.add_argument("--analyze", action="store_true", help="print full EXPLAIN ANALYZE too")
    return p.parse_args()


# --- database and data -----------------------------------------------------------------------


def scope(engine: Engine) -> ApiUser:
    """The bench's organization and list (created if missing), as an in-memory api user."""
    with session_scope(engine) as session:
        org = get_or_create_organization(session, ORG_NAME)
        lst = session.scalars(
            sa.select(ContactList).where(
                col(ContactList.organization_id) == org.id, col(ContactList.name) == LIST_NAME
            )
        ).first()
        if lst is None:
            lst = ContactList(organization_id=org.id, name=LIST_NAME)
            session.add(lst)
            session.flush()
        assert lst.id is not None
        # list_members only reads organization_id and list_id: the api user is never stored.
        return ApiUser(organization_id=org.id, list_id=lst.id, api_user="bench", key_hash="-")


def count_members(engine: Engine, user: ApiUser) -> int:
    """How many contacts the bench list holds."""
    with engine.connect() as conn:
        return int(
            conn.scalar(
                sa.select(sa.func.count())
                .select_from(Contact)
                .where(
                    col(Contact.organization_id) == user.organization_id,
                    col(Contact.list_id) == user.list_id,
                )
            )
            or 0
        )


def contact_rows(n: int) -> Iterator[tuple[Any, ...]]:
    """N contacts: distinct emails and phones, common names, a plan and a city, in random order."""
    rng = random.Random(SEED)
    domains = [d for d, _ in DOMAINS]
    domain_weights = [w for _, w in DOMAINS]
    plans = [p for p, _ in PLANS]
    plan_weights = [w for _, w in PLANS]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}{i}@{rng.choices(domains, domain_weights)[0]}"
        # 7919 is prime to 8e9: i -> i*7919 mod 8e9 is one-to-one, so phones are distinct.
        phone = f"+1{2_000_000_000 + (i * 7919) % 8_000_000_000}"
        fields = {"plan": rng.choices(plans, plan_weights)[0], "city": rng.choice(CITIES)}
        yield email, phone, f"{first} {last}", json.dumps(fields), start + timedelta(seconds=i)


def load(engine: Engine, user: ApiUser, n: int) -> float:
    """Replace the bench list's contacts by ``n`` new ones; return the seconds it took."""
    began = time.monotonic()
    org, list_id = user.organization_id, user.list_id
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM contact_tags WHERE contact_id IN "
                "(SELECT id FROM contacts WHERE list_id = :list)"
            ),
            {"list": list_id},
        )
        conn.execute(sa.text("DELETE FROM contacts WHERE list_id = :list"), {"list": list_id})
    raw = engine.raw_connection()
    try:
        pg = raw.driver_connection
        assert pg is not None
        with pg.cursor() as cur:
            copy_sql = (
                "COPY contacts (organization_id, list_id, email, phone, name, fields, created_at)"
                " FROM STDIN"
            )
            with cur.copy(copy_sql) as copy:
                for email, phone, name, fields, created in contact_rows(n):
                    copy.write_row((org, list_id, email, phone, name, fields, created))
        pg.commit()
    finally:
        raw.close()
    tag_and_register(engine, user)
    return time.monotonic() - began


def tag_and_register(engine: Engine, user: ApiUser) -> None:
    """Tag a share of the list's contacts (:data:`TAGS`); register the custom fields."""
    with session_scope(engine) as session:
        org = user.organization_id
        for name in ("plan", "city"):
            known = session.scalars(
                sa.select(ContactField).where(
                    col(ContactField.organization_id) == org, col(ContactField.name) == name
                )
            ).first()
            if known is None:
                session.add(ContactField(organization_id=org, name=name))
        for position, (tag, percent) in enumerate(TAGS.items()):
            session.execute(
                sa.text(
                    "INSERT INTO tags (organization_id, name) VALUES (:org, :tag) "
                    "ON CONFLICT DO NOTHING"
                ),
                {"org": org, "tag": tag},
            )
            session.execute(
                sa.text(
                    "INSERT INTO contact_tags (contact_id, tag_id) "
                    "SELECT c.id, t.id FROM contacts c "
                    "JOIN tags t ON t.organization_id = :org AND t.name = :tag "
                    "WHERE c.list_id = :list AND abs(hashtext(c.id::text || :salt)) % 100 < :pct"
                ),
                {
                    "org": org,
                    "tag": tag,
                    "list": user.list_id,
                    "salt": str(position),
                    "pct": percent,
                },
            )


def vacuum_analyze(engine: Engine) -> None:
    """``VACUUM ANALYZE`` the contact tables (statistics, and visibility for index-only scans)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("contacts", "contact_tags", "tags", "contact_fields"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))


# --- conditions and timing -------------------------------------------------------------------


def item(field: str, op: str, value: str | None = None) -> dict[str, Any]:
    """One condition item."""
    return {"field_name": field, "op": op, "value": value}


def cases(engine: Engine, user: ApiUser) -> list[tuple[str, dict[str, Any] | None]]:
    """The conditions to time, with values taken from a contact in the middle of the list."""
    with engine.connect() as conn:
        email, phone, name = conn.execute(
            sa.select(col(Contact.email), col(Contact.phone), col(Contact.name))
            .where(col(Contact.list_id) == user.list_id)
            .order_by(col(Contact.id))
            .offset(count_members(engine, user) // 2)
            .limit(1)
        ).one()
        other_phone = conn.scalar(
            sa.select(col(Contact.phone))
            .where(col(Contact.list_id) == user.list_id)
            .order_by(col(Contact.id))
            .offset(count_members(engine, user) // 3)
            .limit(1)
        )

    def one(*items: dict[str, Any], relation: str = "and") -> dict[str, Any]:
        return {"relation": relation, "items": list(items)}

    return [
        ("Email == address", one(item("Email", "==", email))),
        ("Phone == number", one(item("Phone", "==", phone))),
        ("Name == full name", one(item("Name", "==", name))),
        ("Name >= 'Zo' (tail range)", one(item("Name", ">=", "Zo"))),
        ("Name in ['Ma', 'Mb') (and)", one(item("Name", ">=", "Ma"), item("Name", "<", "Mb"))),
        ("Email contain 'hotmail'", one(item("Email", "contain", "hotmail"))),
        ("plan == 'gold' (custom)", one(item("plan", "==", "gold"))),
        ("tag == 'vip'", one(item("tag", "==", "vip"))),
        ("Email == a and tag == vip", one(item("Email", "==", email), item("tag", "==", "vip"))),
        (
            "Email == a or Phone == b",
            one(item("Email", "==", email), item("Phone", "==", other_phone), relation="or"),
        ),
        ("no condition", None),
    ]


def percentile(samples: list[float], share: float) -> float:
    """Nearest-rank percentile of ``samples`` (``share`` in 0..1)."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def time_case(engine: Engine, user: ApiUser, condition: Any, runs: int) -> tuple[list[float], int]:
    """Milliseconds of ``runs`` calls of ``list_members`` (after one warm-up), and the total."""
    samples: list[float] = []
    total = 0
    for run in range(runs + 1):
        with Session(engine) as session:
            began = time.perf_counter()
            page = list_members(session, user, condition, limit=10)
            elapsed = (time.perf_counter() - began) * 1000
            session.rollback()
        total = page.total
        if run:
            samples.append(elapsed)
    return samples, total


def queries(session: Session, user: ApiUser, condition: Any) -> dict[str, sa.Select[Any]]:
    """The two statements ``list_members`` runs, built the same way (scope + condition)."""
    where = sa.and_(
        col(Contact.organization_id) == user.organization_id,
        col(Contact.list_id) == user.list_id,
        compile_condition(session, user.organization_id, condition),
    )
    return {
        "count": sa.select(sa.func.count()).select_from(Contact).where(where),
        "page": sa.select(Contact).where(where).order_by(col(Contact.id)).limit(10),
    }


def plan_nodes(plan: dict[str, Any]) -> Iterator[str]:
    """Scan nodes of a JSON plan: ``Index Only Scan ix_…``, ``Seq Scan contacts`` …"""
    kind = plan.get("Node Type", "")
    if "Scan" in kind:
        target = plan.get("Index Name") or plan.get("Relation Name") or ""
        yield f"{kind} {target}".strip()
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def explain(engine: Engine, user: ApiUser, condition: Any, analyze: bool) -> list[str]:
    """A one-line plan summary per query, plus the EXPLAIN ANALYZE text when ``analyze``."""
    lines: list[str] = []
    with Session(engine) as session:
        for label, stmt in queries(session, user, condition).items():
            compiled = stmt.compile(dialect=engine.dialect)
            conn = session.connection()
            plan = conn.exec_driver_sql(
                f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params
            ).scalar_one()
            nodes = list(dict.fromkeys(plan_nodes(plan[0]["Plan"])))
            lines.append(f"    {label}: {'; '.join(nodes)}")
            if analyze:
                text = conn.exec_driver_sql(
                    f"EXPLAIN (ANALYZE, BUFFERS) {compiled}", compiled.params
                ).scalars()
                lines.extend(f"      {row}" for row in text)
        session.rollback()
    return lines


def main() -> None:
    """Set up the data, time every condition and print the table."""
    args = parse()
    ensure_database(args.database_url)
    migrate(args.database_url)
    engine = make_engine(args.database_url)
    user = scope(engine)
    have = count_members(engine, user)
    if args.reload or have != args.contacts:
        print(f"loading {args.contacts:,} contacts (list held {have:,}) …", flush=True)
        print(f"loaded in {load(engine, user, args.contacts):.1f} s", flush=True)
        vacuum_analyze(engine)
    else:
        print(f"list already holds {have:,} contacts (use --reload to load again)")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE contacts"))
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SHOW server_version").scalar()
    print(f"PostgreSQL {version}; {args.runs} runs per condition after one warm-up; ms\n")
    header = f"| {'condition':<30} | {'total':>9} | {'median ms':>9} | {'p95 ms':>8} |"
    print(header)
    print(f"|{'-' * 32}|{'-' * 10}:|{'-' * 10}:|{'-' * 9}:|")
    for label, condition in cases(engine, user):
        samples, total = time_case(engine, user, condition, args.runs)
        median, p95 = statistics.median(samples), percentile(samples, 0.95)
        print(f"| {label:<30} | {total:>9,} | {median:>9.1f} | {p95:>8.1f} |", flush=True)
        if args.explain or args.analyze:
            print("\n".join(explain(engine, user, condition, args.analyze)), flush=True)
    engine.dispose()


if __name__ == "__main__":
    main()
