"""CSV cells that a spreadsheet will not run: formula prefixes neutralised, and undone on import.

Contacts arrive from third parties (the lists API, bot sheets), so a cell of an export may start
with ``=``, ``+``, ``-`` or ``@`` — which Excel, LibreOffice and Google Sheets read as a formula
(``=HYPERLINK(…)``, ``=cmd|' /C calc'!A0``) — or with a tab or a carriage return, which they may
drop to reach one. OWASP's *CSV Injection* advice: start such a cell with a single quote, which
spreadsheets show as text and do not display. A cell that itself starts with a quote gets one
too, so that :func:`restore` (used by the contacts import) gives back exactly what was stored.

A cell that is only a signed number (``+15550001``, ``-3.5``, ``+1 (555) 000-1``) is left as it
is: with no letter it can name no function and no cell, so a spreadsheet computes at most a
number, and phone numbers in E.164 stay readable in every export.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: First characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_PREFIXES = frozenset("=+-@\t\r")
#: What a neutralised cell starts with: a single quote, shown as text, not displayed.
MARK = "'"
_MARKED = FORMULA_PREFIXES | {MARK}
#: A signed number, as phones are written: digits, spaces, dots, dashes and brackets only.
_SIGNED_NUMBER = re.compile(r"[+-][0-9 ().-]*[0-9][0-9 ().-]*")


def neutralise(cell: str) -> str:
    """``cell`` as a spreadsheet shows it without running it: ``=1+1`` becomes ``'=1+1``.

    Example:
        >>> neutralise("=HYPERLINK(\\"http://evil\\")"), neutralise("+15550001"), neutralise("Ana")
        ('\\'=HYPERLINK("http://evil")', '+15550001', 'Ana')
    """
    if not cell or cell[0] not in _MARKED or _SIGNED_NUMBER.fullmatch(cell):
        return cell
    return MARK + cell


def neutralise_row(cells: Iterable[str]) -> list[str]:
    """Every cell of a row through :func:`neutralise`."""
    return [neutralise(cell) for cell in cells]


def restore(cell: str) -> str:
    """The value :func:`neutralise` was given: the mark dropped where it put one.

    Example:
        >>> restore("'=1+1"), restore("''quoted"), restore("'plain")
        ('=1+1', "'quoted", "'plain")
    """
    return cell[1:] if len(cell) > 1 and cell[0] == MARK and cell[1] in _MARKED else cell
