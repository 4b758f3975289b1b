"""Search filters: which chunks a search may return, as one SQL condition.

Every filter narrows: collections and kinds are lists (any of them), ``path`` is a glob on the file path
(``*`` matches across folders: ``*/notes/*``, ``*.md``), dates are inclusive days compared with the
document's date (the mail's or the document's own date, else the file's modification time, in UTC), and
``sender`` matches part of the sender or author, ignoring case.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plait.errors import InputError


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    collections: tuple[str, ...] = Field(default=(), description="only these collections")
    path: str | None = Field(default=None, description="glob on the file path, e.g. '*/notes/*' or '*.pdf'")
    kinds: tuple[str, ...] = Field(default=(), description="only these document kinds: txt, md, pdf, email…")
    after: date | None = Field(default=None, description="documents dated on or after this day")
    before: date | None = Field(default=None, description="documents dated on or before this day")
    sender: str | None = Field(default=None, description="part of the sender's (or author's) name or address")

    @model_validator(mode="after")
    def _dates_in_order(self) -> SearchFilters:
        if self.after and self.before and self.after > self.before:
            raise ValueError(f"'after' ({self.after}) is later than 'before' ({self.before})")
        return self

    @property
    def empty(self) -> bool:
        return not (self.collections or self.path or self.kinds or self.after or self.before or self.sender)

    def sql(self) -> tuple[str, list[object]]:
        """A condition over ``d`` (index_documents), ``f`` (index_files) and ``k`` (index_collections)."""
        clauses: list[str] = []
        params: list[object] = []
        if self.collections:
            clauses.append(f"k.name IN ({','.join('?' * len(self.collections))})")
            params.extend(self.collections)
        if self.path:
            clauses.append("f.path GLOB ?")
            params.append(self.path)
        if self.kinds:
            clauses.append(f"d.kind IN ({','.join('?' * len(self.kinds))})")
            params.extend(k.lower().lstrip(".") for k in self.kinds)
        if self.after:
            clauses.append("d.date >= ?")
            params.append(self.after.isoformat())
        if self.before:
            clauses.append("d.date < ?")  # dates carry times: before the next day means "on or before"
            params.append((self.before + timedelta(days=1)).isoformat())
        if self.sender:
            clauses.append("d.sender LIKE ? ESCAPE '\\'")
            escaped = self.sender.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        return (" AND ".join(clauses) or "1"), params


JOINS = ("JOIN index_documents d ON d.id = c.document_id "
         "JOIN index_files f ON f.id = d.file_id "
         "JOIN index_collections k ON k.id = f.collection_id")


def make_filters(**values: object) -> SearchFilters:
    """SearchFilters from loose values (CLI options, workflow steps), with errors as InputError."""
    from pydantic import ValidationError

    cleaned = {k: v for k, v in values.items() if v not in (None, (), [])}
    for key in ("collections", "kinds"):
        if isinstance(cleaned.get(key), str):
            cleaned[key] = (cleaned[key],)
    try:
        return SearchFilters.model_validate(cleaned)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "filters"
        raise InputError(f"bad search filter {where}: {err['msg']}") from exc
