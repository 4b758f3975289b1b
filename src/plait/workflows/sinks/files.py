"""File sinks: write a file per item (Markdown, JSON, HTML, text), move or copy the item's file, tag it.

Each is idempotent for an item: writing goes to a path rendered from the item (same item, same path) and
replaces the file atomically; a move whose source is gone but whose destination exists was already done;
tags are added as a set (extended attribute ``user.xdg.tags``, the freedesktop convention file managers
read). A file written, moved or copied into an encrypted plait home is sealed there like all its files.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from plait.errors import InputError
from plait.workflows.context import StepContext
from plait.workflows.errors import StepError
from plait.workflows.sinks import Sink, SinkOptions, write_atomic

TAGS_ATTRIBUTE = "user.xdg.tags"
Format = Literal["auto", "md", "json", "html", "txt"]


def _format(fmt: Format, path: Path) -> str:
    if fmt != "auto":
        return fmt
    return {".md": "md", ".markdown": "md", ".json": "json", ".html": "html", ".htm": "html"}.get(
        path.suffix.lower(), "txt")


def _outputs(ctx: StepContext) -> dict[str, Any]:
    return {k: v for k, v in ctx.variables["steps"].items() if v is not None}


def default_content(ctx: StepContext, fmt: str) -> str:
    """An item and its step outputs, readable, when the sink has no template of its own."""
    item = ctx.variables["item"]
    title = str(item.get("subject") or item.get("title") or item.get("name") or ctx.item_key)
    fields = {k: v for k, v in item.items() if k not in ("text", "body") and v not in ("", None, [])}
    if fmt == "json":
        return json.dumps({"key": ctx.item_key, "item": item, "steps": _outputs(ctx)}, indent=2, ensure_ascii=False,
                          default=str)
    if fmt == "html":
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in fields.items())
        steps = "".join(f"<h2>{html.escape(k)}</h2><pre>{html.escape(json.dumps(v, indent=2, default=str))}</pre>"
                        for k, v in _outputs(ctx).items())
        return (f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title><h1>{html.escape(title)}"
                f"</h1><table>{rows}</table>{steps}\n")
    lines = [f"# {title}", ""] + [f"- **{k}**: {v}" for k, v in fields.items()] + [""]
    for k, v in _outputs(ctx).items():
        shown = v.get("text") if isinstance(v, dict) and isinstance(v.get("text"), str) else v
        lines += [f"## {k}", "", shown if isinstance(shown, str) else "```json\n" +
                  json.dumps(shown, indent=2, ensure_ascii=False, default=str) + "\n```", ""]
    return "\n".join(lines)


class FileOptions(SinkOptions):
    path: str = Field(description="where to write; a template, relative to the workflow's output folder")
    content: str | None = Field(None, description="a template for the file's text (default: the item and its "
                                                  "step outputs)")
    data: Any = Field(None, description="for JSON: a structure or expression to write instead of content")
    format: Format = "auto"


class FileSink(Sink):
    Options = FileOptions
    options: FileOptions

    def _render(self, ctx: StepContext) -> tuple[Path, str]:
        path = ctx.output_path(self.options.path)
        fmt = _format(self.options.format, path)
        if self.options.data is not None:
            text = json.dumps(ctx.render(self.options.data), indent=2, ensure_ascii=False, default=str)
        elif self.options.content is not None:
            text = ctx.render_text(self.options.content)
        else:
            text = default_content(ctx, fmt)
        return path, text

    def apply(self, ctx: StepContext) -> dict[str, Any]:
        path, text = self._render(ctx)
        write_atomic(path, text)
        return {"path": str(path), "bytes": len(text.encode("utf-8"))}

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        path, text = self._render(ctx)
        return {"would_write": str(path), "bytes": len(text.encode("utf-8")), "preview": text[:300]}


class MoveOptions(SinkOptions):
    to: str = Field(description="destination folder (a template); relative paths are in the output folder")
    source: str = Field("{{ item.path }}", description="the file to move (default: the item's file); one taken from "
                        "an item must be in the trigger's folders, the output folder or `within`")
    within: tuple[str, ...] = Field((), description="more folders an item's file may be moved or copied from")
    name: str | None = Field(None, description="new file name (a template; default: the same name)")
    maildir: bool = Field(False, description="`to` is a Maildir: the message goes into its cur/ folder")


class MoveSink(Sink):
    Options = MoveOptions
    options: MoveOptions
    copy = False

    def _paths(self, ctx: StepContext) -> tuple[Path, Path]:
        source = ctx.input_path(self.options.source, self.options.within)
        folder = ctx.output_path(self.options.to)
        if self.options.maildir:
            for sub in ("tmp", "new", "cur"):
                if not ctx.dry_run:
                    (folder / sub).mkdir(parents=True, exist_ok=True)
            folder = folder / "cur"
        name = ctx.render_text(self.options.name) if self.options.name else source.name
        if not name or "/" in name or name in (".", ".."):
            raise InputError(f"step '{ctx.step_path}': '{name}' is not a file name")
        return source, folder / name

    def apply(self, ctx: StepContext) -> dict[str, Any]:
        source, dest = self._paths(ctx)
        if not source.exists():
            if dest.exists():
                return {"from": str(source), "to": str(dest), "already": True}
            raise StepError(f"cannot {'copy' if self.copy else 'move'} {source}: it no longer exists")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self.copy:
            _copy_file(source, dest)
        elif not _move_in_place(source, dest):
            _copy_file(source, dest)
            source.unlink()
        return {"from": str(source), "to": str(dest)}

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        source, dest = self._paths(ctx)
        return {"would_" + ("copy" if self.copy else "move"): str(source), "to": str(dest)}


class CopySink(MoveSink):
    copy = True


def _move_in_place(source: Path, dest: Path) -> bool:
    """Rename ``source`` to ``dest`` (atomic); False when it must be copied instead: into an encrypted home,
    where the file is to be sealed, or onto another file system."""
    from plait.security.keys import keys_for

    if keys_for(dest) is not None:
        return False
    try:
        os.replace(source, dest)
    except OSError:
        return False
    return True


def _copy_file(source: Path, dest: Path) -> None:
    """Copy a file whole or not at all. Inside an encrypted home the copy is sealed with that home's key, as
    every file plait writes there is; elsewhere it is copied as it is, with its times. The temporary file is
    named as write_atomic's are, so one a crash leaves is found and removed (remove_temporaries)."""
    from plait.security.keys import keys_for
    from plait.security.storage import unsealed

    if keys_for(dest) is not None:
        write_atomic(dest, unsealed(source, source.read_bytes()))
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TagOptions(SinkOptions):
    tags: list[str] | str = Field(description="tags to add (a list, or a template giving one or a comma list)")
    path: str = Field("{{ item.path }}", description="the file to tag (default: the item's file); one taken from "
                      "an item must be in the trigger's folders, the output folder or `within`")
    within: tuple[str, ...] = Field((), description="more folders an item's file may be tagged in")


class TagSink(Sink):
    Options = TagOptions
    options: TagOptions

    def _tags(self, ctx: StepContext) -> list[str]:
        value = ctx.render(self.options.tags)
        items = value if isinstance(value, list) else str(value).split(",")
        return sorted({str(t).strip() for t in items if str(t).strip()})

    def apply(self, ctx: StepContext) -> dict[str, Any]:
        path = ctx.input_path(self.options.path, self.options.within)
        wanted = self._tags(ctx)
        try:
            current = os.getxattr(path, TAGS_ATTRIBUTE).decode("utf-8")
        except FileNotFoundError as exc:
            raise StepError(f"cannot tag {path}: it no longer exists") from exc
        except OSError:
            current = ""  # no tags yet (ENODATA)
        tags = sorted({t for t in current.split(",") if t} | set(wanted))
        try:
            os.setxattr(path, TAGS_ATTRIBUTE, ",".join(tags).encode("utf-8"))
        except OSError as exc:
            raise StepError(f"cannot tag {path}: its file system does not store extended attributes "
                            f"({exc.strerror})") from exc
        return {"path": str(path), "tags": tags}

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        return {"would_tag": str(ctx.input_path(self.options.path, self.options.within)), "tags": self._tags(ctx)}


def read_tags(path: Path) -> list[str]:
    try:
        return [t for t in os.getxattr(path, TAGS_ATTRIBUTE).decode("utf-8").split(",") if t]
    except OSError:
        return []
