"""Ratings tables and item texts for recommend: reading CSV/TSV files people actually have.

A ratings file has one rating a line: ``user, item, rating[, timestamp]``, separated by commas, tabs,
semicolons, pipes or ``::`` (MovieLens 1M), with or without a header. Headers are matched by name
(``userId``, ``movie_id``, ``rating:float``…) so the columns may come in any order; without a header the
order above is assumed. An items file has an item id and then any text columns (title, genres,
description…), which become the text embedded for content-based recommendations.

Errors name the file and line; nothing is skipped silently.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plait.errors import InputError
from plait.readers.text import read_text

if TYPE_CHECKING:
    import numpy as np

USER_NAMES = {"user", "userid", "user_id", "uid", "customer", "customerid", "customer_id", "reader", "member"}
ITEM_NAMES = {"item", "itemid", "item_id", "iid", "movie", "movieid", "movie_id", "product", "productid",
              "product_id", "book", "bookid", "book_id", "isbn", "asin", "track", "song", "article"}
RATING_NAMES = {"rating", "ratings", "score", "stars", "value", "rate", "preference"}
ID_NAMES = ITEM_NAMES | {"id"}
MAX_BAD_LINES = 3


@dataclass(frozen=True)
class RatingsTable:
    users: np.ndarray  # str, one per rating
    items: np.ndarray  # str
    ratings: np.ndarray  # float32
    source: str = "ratings"
    duplicates: int = 0  # repeated (user, item) pairs dropped, keeping the last

    def __len__(self) -> int:
        return len(self.ratings)

    @classmethod
    def from_rows(cls, users: Sequence[object], items: Sequence[object], ratings: Sequence[float], *,
                  source: str = "ratings") -> RatingsTable:
        """From parallel sequences (ids of any type become strings); checks and de-duplicates like a file."""
        import numpy as np

        if not (len(users) == len(items) == len(ratings)):
            raise InputError(f"{source}: users, items and ratings differ in length")
        if len(users) == 0:
            raise InputError(f"{source} has no ratings")
        r = np.asarray(ratings, dtype=np.float64)
        if not np.isfinite(r).all():
            raise InputError(f"{source}: ratings must be finite numbers")
        return _dedupe(np.array([str(u) for u in users], dtype=object), np.array([str(i) for i in items],
                                                                                 dtype=object),
                       r.astype(np.float32), source)


@dataclass(frozen=True)
class ItemText:
    title: str  # the first text column, shown in results
    text: str  # every text column, embedded for content-based scoring


def read_ratings(path: str | Path) -> RatingsTable:
    p = Path(path)
    rows = _rows(p)
    if not rows:
        raise InputError(f"{p} has no ratings: it is empty")
    header, body, first_line = _split_header(rows[0], rows)
    cols = _rating_columns(header, p)
    users, items, ratings = [], [], []
    bad: list[str] = []
    need = max(cols) + 1
    for offset, row in enumerate(body):
        line = first_line + offset
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < need:
            bad.append(f"line {line}: expected at least {need} columns, found {len(row)}")
        else:
            user, item, value = row[cols[0]].strip(), row[cols[1]].strip(), row[cols[2]].strip()
            rating = _number(value)
            if not user or not item:
                bad.append(f"line {line}: empty user or item id")
            elif rating is None:
                bad.append(f"line {line}: rating '{value[:20]}' is not a number")
            else:
                users.append(user)
                items.append(item)
                ratings.append(rating)
        if len(bad) >= MAX_BAD_LINES:
            break
    if bad:
        raise InputError(f"{p} is not a ratings table (user, item, rating[, timestamp]): " + "; ".join(bad))
    if not ratings:
        raise InputError(f"{p} has no ratings" + (" (only a header)" if header else ""))
    return RatingsTable.from_rows(users, items, ratings, source=str(p))


def read_items(path: str | Path) -> dict[str, ItemText]:
    """Item id → its texts. Lines with an id but no text are kept with the id as the text."""
    p = Path(path)
    rows = _rows(p)
    if not rows:
        raise InputError(f"{p} has no items: it is empty")
    first = [c.strip().lower().split(":", 1)[0] for c in rows[0]]
    has_header = bool(first) and first[0] in ID_NAMES
    out: dict[str, ItemText] = {}
    for row in rows[1 if has_header else 0:]:
        if not row or not row[0].strip():
            continue
        fields = [c.strip() for c in row[1:] if c.strip()]
        item = row[0].strip()
        title = fields[0] if fields else item
        out[item] = ItemText(title, ". ".join(fields) if fields else item)
    if not out:
        raise InputError(f"{p} has no items" + (" (only a header)" if has_header else ""))
    return out


def _rows(path: Path) -> list[list[str]]:
    text = read_text(path)
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return []
    sample = "\n".join(lines[:20])
    if "::" in lines[0]:
        return [line.split("::") for line in lines]
    if "\t" in sample:
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;|").delimiter
        except csv.Error:
            delimiter = ","
    return [row for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)]


def _split_header(first: list[str], rows: list[list[str]]) -> tuple[list[str] | None, list[list[str]], int]:
    # A header is a first row whose third column is not a number (no rating is called "rating" by chance).
    if len(first) >= 3 and not _parses(first[2].strip()):
        return [c.strip().lower().split(":", 1)[0] for c in first], rows[1:], 2
    return None, rows, 1


def _rating_columns(header: list[str] | None, path: Path) -> tuple[int, int, int]:
    if header is None:
        return 0, 1, 2

    def find(names: set[str], fallback: int) -> int:
        normalised = [h.replace(" ", "").replace("-", "_") for h in header]
        for i, h in enumerate(normalised):
            if h in names:
                return i
        return fallback

    cols = find(USER_NAMES, 0), find(ITEM_NAMES, 1), find(RATING_NAMES, 2)
    if len(set(cols)) < 3:
        raise InputError(f"{path}: cannot tell the user, item and rating columns apart in the header "
                         f"{', '.join(header)}; name them user, item, rating")
    return cols


def _parses(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _dedupe(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, source: str) -> RatingsTable:
    import numpy as np

    keys = np.char.add(np.char.add(users.astype(str), "\x1f"), items.astype(str))
    # Keep the last rating of each (user, item): a later line is a person changing their mind.
    _, last_from_end = np.unique(keys[::-1], return_index=True)
    keep = np.sort(len(keys) - 1 - last_from_end)
    dropped = len(keys) - len(keep)
    return RatingsTable(users[keep], items[keep], ratings[keep], source, dropped)
