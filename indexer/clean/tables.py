"""Table cells and their spans, and the linearisation of rows into lines
(``Header: value; Header: value``); the renderer collects the cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

_DIGITS_RE: Final = re.compile(r"\d{1,6}")
CELL_ATTRIBUTES_RE: Final = re.compile(
    r"\s*((?:(?:colspan|rowspan|style|class|align|valign|bgcolor|width|height|scope|nowrap"
    r"|data-sort-value|data-sort-type)\s*=\s*(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'|]+)\s*)+)\|?",
    re.IGNORECASE,
)
MAX_ROWSPAN: Final = 500
MAX_COLSPAN: Final = 50
_MAX_COLUMNS: Final = 100


def text_span_value(attributes: str, name: str, limit: int) -> int:
    found = re.search(name + r"\s*=\s*[\"']?(\d{1,6})", attributes, re.IGNORECASE)
    return min(max(int(found.group(1)), 1), limit) if found else 1


def span(tag: Any, name: str, limit: int) -> int:
    if not tag.has(name):
        return 1
    digits = _DIGITS_RE.search(str(tag.get(name).value))
    return min(max(int(digits.group()), 1), limit) if digits else 1


@dataclass
class Cell:
    header: bool
    text: str
    rowspan: int = 1
    colspan: int = 1


def _grid_row(row: list[Cell], carry: dict[int, tuple[int, Cell]]) -> list[Cell]:
    """Place a row's cells on the column grid, filling columns held by rowspans above (at most
    ``_MAX_COLUMNS`` columns, so that absurd spans stay cheap)."""
    grid: list[Cell] = []
    cells = iter(row)
    while len(grid) < _MAX_COLUMNS:
        column = len(grid)
        held = carry.get(column)
        if held is not None:
            left, cell = held
            grid.append(cell)
            if left <= 1:
                del carry[column]
            else:
                carry[column] = (left - 1, cell)
            continue
        nxt = next(cells, None)
        if nxt is None:
            break
        for offset in range(min(nxt.colspan, _MAX_COLUMNS - column)):
            spread = nxt if offset == 0 or nxt.header else Cell(nxt.header, "")
            if nxt.rowspan > 1:
                carry[column + offset] = (nxt.rowspan - 1, spread)
            grid.append(spread)
    return grid


def _merge_headers(previous: list[str], new: list[str]) -> list[str]:
    merged: list[str] = []
    for i, text in enumerate(new):
        above = previous[i] if i < len(previous) else ""
        merged.append(f"{above} {text}" if above and text and above != text else text or above)
    return merged


def linearise_rows(rows: list[list[Cell]]) -> list[str]:
    """Rows → lines: ``Header: value; Header: value`` when a header row exists."""
    headers: list[str] = []
    previous_was_header = False
    lines: list[str] = []
    data_rows = 0
    carry: dict[int, tuple[int, Cell]] = {}
    for row in rows:
        grid = _grid_row(row, carry)
        if not grid:
            continue
        distinct = {id(cell) for cell in grid if cell.text}
        if all(cell.header for cell in grid) and len(distinct) > 1:
            texts = [cell.text for cell in grid]
            headers = _merge_headers(headers, texts) if previous_was_header else texts
            previous_was_header = True
            continue
        previous_was_header = False
        if all(cell.rowspan > 1 for cell in grid if cell.text):
            continue  # only cells that span rows: they are written in the rows they span
        parts: list[str] = []
        for column, cell in enumerate(grid):
            if not cell.text:
                continue
            label = headers[column] if column < len(headers) else ""
            parts.append(f"{label}: {cell.text}" if label and label != cell.text else cell.text)
        if parts:
            lines.append("; ".join(dict.fromkeys(parts)))
            data_rows += 1
    if not data_rows and headers:
        lines.append("; ".join(text for text in dict.fromkeys(headers) if text))
    return lines
