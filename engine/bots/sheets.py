"""Recipients of a bot's campaign action: a sheet of CSV lines or an uploaded CSV file.

The sheet (``sheet_values``, or the CSV ``file``) is CSV text whose first line is a header
naming the columns. Address columns (names compared case-insensitively):

* ``email`` — the channel ``email`` needs it;
* ``phone`` — the channel ``whatsapp`` needs it;
* ``telegram_chat_id`` — the channel ``telegram`` needs it.

Other channels (``log``, ``webhook``, ``null``) need any one of them. ``name`` is the contact's
name; every other column is a custom field. All columns are template variables of the message
(``Olá {{ name }}, seu pedido {{ pedido }}``). A row that can't be sent (wrong number of cells,
no address for the channel, a malformed address, the same recipient twice) is reported in the
action's log file and the other rows are still sent.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from engine.audience.contact_data import normalise_address
from engine.errors import ValidationFailed

#: Most rows one action may send to.
MAX_ROWS = 100_000
#: The address column each channel needs; other channels take any of them.
CHANNEL_ADDRESS = {"email": "email", "whatsapp": "phone", "telegram": "telegram_chat_id"}
#: Address columns, in the order a log file names a recipient by.
ADDRESS_COLUMNS = ("email", "phone", "telegram_chat_id")


@dataclass(frozen=True)
class SheetRow:
    """One data row of a sheet: its line number (the header is line 1) and its cells."""

    number: int
    cells: dict[str, str]


@dataclass
class Recipients:
    """The contacts to create, and the rows that could not be sent."""

    contacts: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)


class BadRow(Exception):
    """A row that cannot be sent; ``code`` goes to the log file."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def decode_file(value: str) -> str:
    """The CSV text of an uploaded ``file``: a ``data:`` URL (base64 or percent-encoded) or
    plain base64 text.

    Raises:
        ValidationFailed: ``INVALID_FILE`` when it is neither, or not UTF-8 text.
    """
    text = value.strip()
    try:
        if text.startswith("data:"):
            header, _, data = text.partition(",")
            raw = (
                base64.b64decode(data, validate=True)
                if header.endswith(";base64")
                else unquote_to_bytes(data)
            )
        else:
            raw = base64.b64decode("".join(text.split()), validate=True)
        return raw.decode("utf-8-sig")
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(
            "file must be a CSV as a data: URL (data:text/csv;base64,…) or base64 text",
            code="INVALID_FILE",
        ) from exc


def read_sheet(text: str) -> tuple[list[str], list[SheetRow], list[dict[str, Any]]]:
    """Parse CSV text: the header, the well-formed rows and the malformed ones (as log rows).

    Raises:
        ValidationFailed: ``INVALID_SHEET`` without a header, ``TOO_MANY_ROWS`` past the limit.
    """
    lines = [line for line in csv.reader(io.StringIO(text)) if any(c.strip() for c in line)]
    if not lines:
        raise ValidationFailed(
            "the sheet is empty: its first line names the columns", code="INVALID_SHEET"
        )
    header = [c.strip() for c in lines[0]]
    known = {c.lower() for c in header}
    if not known & set(ADDRESS_COLUMNS) or "" in header or len(known) != len(header):
        raise ValidationFailed(
            "the sheet's first line must name distinct columns, one of them email, phone or "
            f"telegram_chat_id (got {header!r})",
            code="INVALID_SHEET",
        )
    if len(lines) - 1 > MAX_ROWS:
        raise ValidationFailed(f"a sheet has at most {MAX_ROWS} rows", code="TOO_MANY_ROWS")
    rows: list[SheetRow] = []
    invalid: list[dict[str, Any]] = []
    for number, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            message = f"row {number} has {len(line)} cells, the header {len(header)}"
            invalid.append(invalid_row(number, ",".join(line)[:200], "INVALID_ROW", message))
            continue
        rows.append(SheetRow(number, {h: c.strip() for h, c in zip(header, line, strict=True)}))
    return header, rows, invalid


def invalid_row(number: int, recipient: str, code: str, message: str) -> dict[str, Any]:
    """A row of the log file for a sheet row that was not sent."""
    return {"row": number, "recipient": recipient, "code": code, "message": message}


def _address(cells: dict[str, str], column: str) -> str | None:
    value = next((v for k, v in cells.items() if k.lower() == column), "")
    if not value:
        return None
    if column == "telegram_chat_id":
        if not value.lstrip("-").isdigit():
            raise BadRow("INVALID_RECIPIENT", f"telegram_chat_id {value!r} is not a chat id")
        return value
    try:
        normalised = normalise_address(value)
    except ValidationFailed as exc:
        raise BadRow("INVALID_RECIPIENT", exc.message) from None
    if (column == "email") != ("@" in normalised):
        raise BadRow("INVALID_RECIPIENT", f"{value!r} is not a valid {column}")
    return normalised


def to_contact(cells: dict[str, str], channel: str) -> dict[str, Any]:
    """The contact a row stands for: ``email``, ``phone``, ``name`` and custom ``fields``.

    Raises:
        BadRow: no address the channel can use, or a malformed one.
    """
    addresses = {column: _address(cells, column) for column in ADDRESS_COLUMNS}
    needed = CHANNEL_ADDRESS.get(channel)
    if needed and not addresses[needed]:
        raise BadRow("MISSING_RECIPIENT", f"the {channel} channel needs a {needed}")
    if not any(addresses.values()):
        raise BadRow("MISSING_RECIPIENT", "no email, phone or telegram_chat_id")
    fields = {
        k: v for k, v in cells.items() if k.lower() not in ("email", "phone", "name") and v != ""
    }
    if addresses["telegram_chat_id"]:
        fields = {k: v for k, v in fields.items() if k.lower() != "telegram_chat_id"}
        fields["telegram_chat_id"] = addresses["telegram_chat_id"]
    name = next((v for k, v in cells.items() if k.lower() == "name"), "") or None
    if name is not None and len(name) > 200:
        raise BadRow("INVALID_ROW", "name has at most 200 characters")
    return {
        "email": addresses["email"],
        "phone": addresses["phone"],
        "name": name,
        "fields": fields,
    }


def recipient_of(email: str | None, phone: str | None, fields: dict[str, Any]) -> str:
    """How the log file names a recipient: the email, else the phone, else the chat id."""
    return email or phone or str(fields.get("telegram_chat_id") or "")


def recipients(rows: list[SheetRow], channel: str) -> Recipients:
    """The rows' contacts for ``channel``; a row that can't be sent is reported, not raised."""
    result = Recipients()
    seen: set[str] = set()
    for row in rows:
        try:
            contact = to_contact(row.cells, channel)
            key = recipient_of(contact["email"], contact["phone"], contact["fields"])
            if key in seen:
                raise BadRow("DUPLICATE_RECIPIENT", f"{key} is on an earlier row")
        except BadRow as bad:
            shown = next((v for v in row.cells.values() if v), "")
            result.invalid.append(invalid_row(row.number, shown, bad.code, bad.message))
            continue
        seen.add(key)
        result.contacts.append(contact)
    return result


def rows_to_sheet(rows: list[dict[str, Any]]) -> list[str]:
    """Objects (a trigger's recipients) as sheet lines: a header, then one CSV line each."""
    header = list(dict.fromkeys(k for row in rows for k in row))
    lines = [_csv_line(header)]
    lines += [
        _csv_line(["" if row.get(k) is None else str(row.get(k)) for k in header]) for row in rows
    ]
    return lines


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()
