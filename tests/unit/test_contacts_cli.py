"""``campaign contacts import / export`` as a user runs them: a real process, a real SQLite file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests.unit.test_cli import campaign


def bootstrap(tmp_path: Path) -> None:
    """Create the organization ``acme``."""
    created = campaign(tmp_path, "admin", "bootstrap", "--organization", "acme", "--user", "ana",
                       "--password", "correct horse battery")  # fmt: skip
    assert created.returncode == 0, created.stderr


FILE = "email,name,tags,plan\nann@example.com,Ann,vip,pro\nnot-an-email,Bob,,\n,Nobody,,\n"


def test_import_then_export_round_trips_and_reports_errors_by_line(tmp_path: Path) -> None:
    source = tmp_path / "contacts.csv"
    source.write_text(FILE)
    bootstrap(tmp_path)

    imported = campaign(tmp_path, "contacts", "import", str(source),
                        "--organization", "acme", "--list", "news")  # fmt: skip

    assert imported.returncode == 0, imported.stderr
    assert "created 1, updated 0, unchanged 0, errors 2" in imported.stdout
    assert "line 3: INVALID_EMAIL" in imported.stdout
    assert "line 4: MISSING_EMAIL_AND_PHONE" in imported.stdout

    exported = campaign(tmp_path, "contacts", "export", "--organization", "acme", "--list", "news")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["email"], r["name"], r["tags"], r["plan"]) for r in rows] == [
        ("ann@example.com", "Ann", "vip", "pro")
    ]

    out = tmp_path / "out.csv"
    to_file = campaign(tmp_path, "contacts", "export", "--organization", "acme", "--list", "news",
                       "--output", str(out))  # fmt: skip
    assert to_file.returncode == 0 and out.read_text() == exported.stdout
    again = campaign(tmp_path, "contacts", "import", str(out),
                     "--organization", "acme", "--list", "news")  # fmt: skip
    assert "created 0, updated 0, unchanged 1, errors 0" in again.stdout


def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    source = tmp_path / "contacts.csv"
    source.write_text(FILE)
    bootstrap(tmp_path)

    missing = campaign(tmp_path, "contacts", "import", str(tmp_path / "nope.csv"),
                       "--organization", "acme", "--list", "news")  # fmt: skip
    unknown_org = campaign(tmp_path, "contacts", "import", str(source),
                           "--organization", "nobody", "--list", "news")  # fmt: skip
    unknown_list = campaign(tmp_path, "contacts", "export", "--organization", "acme",
                            "--list", "nope")  # fmt: skip
    (tmp_path / "data.csv").write_text("ann@example.com,Ann\n")
    no_header = campaign(tmp_path, "contacts", "import", str(tmp_path / "data.csv"),
                         "--organization", "acme", "--list", "news")  # fmt: skip

    for result, code in [
        (missing, "FILE_NOT_FOUND"),
        (unknown_org, "ORGANIZATION_NOT_FOUND"),
        (unknown_list, "LIST_NOT_FOUND"),
        (no_header, "MISSING_HEADER"),
    ]:
        assert result.returncode == 2, result.stderr
        assert code in result.stderr and "Traceback" not in result.stderr


def test_export_neutralises_formulas_unless_raw(tmp_path: Path) -> None:
    source = tmp_path / "contacts.csv"
    source.write_text("email,note\nann@example.com,=1+1\n")
    bootstrap(tmp_path)
    campaign(
        tmp_path, "contacts", "import", str(source), "--organization", "acme", "--list", "news"
    )

    safe = campaign(tmp_path, "contacts", "export", "--organization", "acme", "--list", "news")
    raw = campaign(tmp_path, "contacts", "export", "--organization", "acme", "--list", "news",
                   "--raw")  # fmt: skip

    assert [r["note"] for r in csv.DictReader(io.StringIO(safe.stdout))] == ["'=1+1"]
    assert [r["note"] for r in csv.DictReader(io.StringIO(raw.stdout))] == ["=1+1"]
