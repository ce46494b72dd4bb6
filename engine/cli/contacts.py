"""``campaign contacts``: a contact list's CSV import and export, with progress on standard
error (standard output may carry the export)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from engine.cli.shared import EXIT_BAD_INPUT, console, err_console, migrated_runtime, run
from engine.db import session_scope
from engine.errors import NotFound

if TYPE_CHECKING:
    from engine.audience.contact_import import ImportResult

#: The ``contacts`` command group.
contacts_app = typer.Typer(help="Contacts of a list: CSV import and export.", no_args_is_help=True)

#: Row errors the import command prints (the result keeps the first hundred).
SHOWN_ERRORS = 20


def _csv_progress(unit: str) -> Progress:
    """A progress bar on stderr (stdout may carry an export)."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeRemainingColumn(),
    ]
    return Progress(*columns, console=err_console, transient=unit == "rows")


@contacts_app.command("import")
def contacts_import(
    path: Annotated[Path, typer.Argument(help="CSV file with a header row", show_default=False)],
    organization: Annotated[str, typer.Option(help="Organization name")],
    list_name: Annotated[str, typer.Option("--list", help="Contact list (created if new)")],
) -> None:
    """Import contacts from a CSV file into a list (email, phone, name, tags, custom fields).

    Rows match the list's contacts on email (else phone): importing twice changes nothing.
    Batches are committed as they go, so an interrupted import keeps what it committed; run it
    again to finish. See docs/contacts-csv.md.
    """
    if not path.is_file():
        err_console.print(f"[red]error[/red] FILE_NOT_FOUND: {path} is not a readable file")
        raise typer.Exit(EXIT_BAD_INPUT)
    rt = migrated_runtime()
    from engine.audience.contact_import import import_contacts
    from engine.audience.lists import get_or_create_list
    from engine.campaigns.campaign import get_organization_by_name

    def load() -> ImportResult:
        with (
            session_scope(rt.engine) as session,
            path.open("rb") as raw,
            _csv_progress("bytes") as bar,
        ):
            org = get_organization_by_name(session, organization)
            found = get_or_create_list(session, org.id, list_name)
            assert found.id is not None
            task = bar.add_task("import", total=path.stat().st_size, counts="")

            def show(result: ImportResult) -> None:
                counts = f"{result.rows:,} rows, {result.error_count:,} errors"
                bar.update(task, completed=raw.tell(), counts=counts)

            lines = (line.decode("utf-8") for line in raw)
            result = import_contacts(session, org.id, found.id, lines, on_progress=show)
            bar.update(task, completed=path.stat().st_size)
            return result

    _print_import(run(load))


def _print_import(result: ImportResult) -> None:
    """Print an import's counts and its first :data:`SHOWN_ERRORS` row errors."""
    console.print(
        f"rows {result.rows:,}: created {result.created:,}, updated {result.updated:,}, "
        f"unchanged {result.unchanged:,}, errors {result.error_count:,}"
    )
    for error in result.errors[:SHOWN_ERRORS]:
        console.print(f"  line {error.line}: {error.code} {error.message}", markup=False)
    if result.error_count > SHOWN_ERRORS:
        console.print(f"  … and {result.error_count - SHOWN_ERRORS:,} more rows with errors")


@contacts_app.command("export")
def contacts_export(
    organization: Annotated[str, typer.Option(help="Organization name")],
    list_name: Annotated[str, typer.Option("--list", help="Contact list")],
    output: Annotated[
        Path | None, typer.Option(help="File to write (default: standard output)")
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            help="Write cells as stored, without the ' that keeps spreadsheets from running "
            "cells starting with = + - @ as formulas"
        ),
    ] = False,
) -> None:
    """Export a list's contacts as CSV; the file imports back unchanged."""
    rt = migrated_runtime()
    from engine.audience.contact_export import export_contacts
    from engine.audience.lists import all_lists, list_sizes
    from engine.campaigns.campaign import get_organization_by_name

    def write() -> int:
        with session_scope(rt.engine) as session:
            org = get_organization_by_name(session, organization)
            found = next((x for x in all_lists(session, org.id) if x.name == list_name), None)
            if found is None or found.id is None:
                raise NotFound(f"list {list_name!r} not found", code="LIST_NOT_FOUND")
            total = list_sizes(session, [found.id]).get(found.id, 0)
            out = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
            with _csv_progress("rows") as bar:
                task = bar.add_task("export", total=total or None, counts="")

                def show(written: int) -> None:
                    bar.update(task, completed=written, counts=f"{written:,}/{total:,}")

                try:
                    for text in export_contacts(
                        session, org.id, found.id, on_progress=show, raw=raw
                    ):
                        out.write(text)
                finally:
                    if output:
                        out.close()
            return total

    total = run(write)
    if output:
        err_console.print(f"{total:,} contacts written to {output}")
