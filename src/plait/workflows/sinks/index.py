"""The personal index: add the item's file (or a text written for it) to plait's index, so ``plait ask``
and ``plait search`` find it.

The index is incremental by content hash, so adding the same file twice does nothing the second time.
Items without a file (mail, feed entries) give ``text`` (and ``title``): it is written as a Markdown file
under the output folder (one per item, same name each time) and that file is indexed.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from plait.workflows.context import StepContext
from plait.workflows.sinks import Sink, SinkOptions, write_atomic
from plait.workflows.templates import key_slug


class IndexOptions(SinkOptions):
    path: str | None = Field(None, description="the file to index (a template), e.g. '{{ item.path }}'")
    text: str | None = Field(None, description="or: a text to index (a template)")
    title: str | None = Field(None, description="the title of that text (a template)")
    collection: str = Field("workflows", description="index collection")

    @model_validator(mode="after")
    def _one_source(self) -> IndexOptions:
        if (self.path is None) == (self.text is None):
            raise ValueError("give exactly one of path (a file to index) or text")
        return self


class IndexSink(Sink):
    Options = IndexOptions
    options: IndexOptions

    def _source(self, ctx: StepContext) -> tuple[Any, str | None]:
        o = self.options
        if o.path is not None:
            return ctx.input_path(o.path), None
        title = ctx.render_text(o.title) if o.title else ctx.item_key
        body = ctx.render_text(o.text)
        path = ctx.output_path(f"indexed/{key_slug(ctx.item_key)}.md")
        return path, f"# {title}\n\n{body}\n"

    def apply(self, ctx: StepContext) -> dict[str, Any]:
        from plait.index import open_index

        path, text = self._source(ctx)
        if text is not None:
            write_atomic(path, text)
        report = open_index(ctx.runtime).add([path], collection=self.options.collection)
        return {"path": str(path), "collection": self.options.collection,
                "report": {k: v for k, v in vars(report).items() if isinstance(v, int | str)}}

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        path, text = self._source(ctx)
        return {"would_index": str(path), "collection": self.options.collection,
                "text": (text or "")[:300]}
