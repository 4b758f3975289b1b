"""`plait index add | update | remove | status | list | rebuild`: the personal index."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from plait.cli.common import err_console, state
from plait.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from plait.index.core import Index
    from plait.index.executors import EmbeddingExecutor
    from plait.index.ingest import IngestProgress, IngestReport

app = typer.Typer(no_args_is_help=True, help="Your personal index: add folders and mail, keep them in step, "
                                            "see what was skipped and why.")

CollectionOpt = Annotated[str | None, typer.Option("--collection", "-c", help="collection name")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]
MaxSize = Annotated[float, typer.Option("--max-size", help="skip files larger than this many MB "
                                        "(mailboxes excepted)")]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="where embeddings are computed: local (this process) "
                                          "or ray (Ray workers; needs plait[ray])")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:10001 "
                                                "(default: RAY_ADDRESS, else a Ray instance on this machine)")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", min=1, help="Ray workers, each loading the model "
                                                "once (default: as many as fit)")]
WorkerCpusOpt = Annotated[float | None, typer.Option("--worker-cpus", min=0.1, help="CPUs each Ray worker reserves "
                                                     "(default: the threads setting)")]


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[IngestProgress], None] | None]:
    """A rich progress bar on stderr: units done of total, chunks added, embedding rate."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    start = time.perf_counter()
    with Progress(TextColumn("[bold]{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("files · {task.fields[chunks]:,} chunks · {task.fields[rate]}"),
                  TimeElapsedColumn(), console=err_console(), transient=True) as bar:
        task = bar.add_task("scanning", total=None, chunks=0, rate="")

        def update(p: IngestProgress) -> None:
            elapsed = max(time.perf_counter() - start, 1e-6)
            rate = f"{p.chunks_embedded / elapsed:,.0f} embedded/s" if p.chunks_embedded else ""
            if p.phase == "scanning":
                bar.update(task, description="scanning", total=None, completed=p.units_total, chunks=p.chunks_added,
                           rate=rate)
            else:
                bar.update(task, description=p.phase, total=p.units_total or None, completed=p.units_done,
                           chunks=p.chunks_added, rate=rate)

        yield update


@contextmanager
def _executor(index: Index, kind: str, *, address: str | None, workers: int | None,
              worker_cpus: float | None) -> Iterator[EmbeddingExecutor | None]:
    """What --executor asks for (None: the ingester's own, in this process), closed when the block ends.
    Ray is checked at once, so a missing extra is said before any file is read."""
    if kind not in ("local", "ray"):
        raise InputError(f"unknown executor '{kind}'; choose local or ray")
    if kind == "local":
        if address or workers or worker_cpus:
            raise InputError("--address, --workers and --worker-cpus go with --executor ray")
        yield None
        return
    from plait.distributed.cluster import import_ray
    from plait.distributed.ray_embedding import RayEmbedding

    import_ray()
    executor = RayEmbedding(index, address=address, workers=workers, worker_cpus=worker_cpus)
    try:
        yield executor
    finally:
        executor.close()


def _print_report(report: IngestReport) -> None:
    c = err_console()
    rate = report.chunks_embedded / report.seconds if report.seconds > 0 else 0.0
    c.print(f"[bold]{report.collection}[/]: {report.units:,} files seen in {report.seconds:.1f} s — "
            f"{report.new:,} new, {report.changed:,} changed, {report.unchanged:,} unchanged, "
            f"{report.moved:,} moved, {report.copied:,} copies, {report.deleted:,} deleted", highlight=False)
    c.print(f"  chunks: {report.chunks_added:,} added, {report.chunks_removed:,} removed; "
            f"{report.chunks_embedded:,} embedded ({rate:,.0f}/s), {report.chunks_reused:,} reused", highlight=False)
    for root in report.missing_roots:
        c.print(f"  [yellow]missing[/] {root} (left as it was; `plait index remove {root}` forgets it)",
                highlight=False)
    if report.skipped or report.partial:
        c.print(f"  {len(report.skipped):,} skipped, {len(report.partial):,} partly read: "
                "see `plait index status`", highlight=False)


def _report_json(report: IngestReport) -> dict[str, Any]:
    return asdict(report)


@app.command("add")
def add(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="files, folders, mailboxes (.mbox) or Maildir folders")],
    collection: CollectionOpt = None,
    max_size: MaxSize = 100.0,
    as_json: JsonOpt = False,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    worker_cpus: WorkerCpusOpt = None,
) -> None:
    """Index files and folders; run it again to follow changes (only what changed is read again)."""
    from plait.index.core import open_index

    index = open_index(state(ctx).runtime())
    with _executor(index, executor, address=address, workers=workers, worker_cpus=worker_cpus) as run_on, \
            _progress(sys.stderr.isatty() and not as_json) as progress:
        report = index.add(paths, collection=collection or "default", max_file_mb=max_size, progress=progress,
                           executor=run_on)
    if as_json:
        print(json.dumps(_report_json(report), ensure_ascii=False))
    else:
        _print_report(report)


@app.command("update")
def update(ctx: typer.Context, collection: CollectionOpt = None, max_size: MaxSize = 100.0,
           as_json: JsonOpt = False, executor: ExecutorOpt = "local", address: AddressOpt = None,
           workers: WorkersOpt = None, worker_cpus: WorkerCpusOpt = None) -> None:
    """Re-scan every folder added before (of one collection, or all): follow edits, moves and deletions."""
    from plait.index.core import open_index

    index = open_index(state(ctx).runtime())
    with _executor(index, executor, address=address, workers=workers, worker_cpus=worker_cpus) as run_on, \
            _progress(sys.stderr.isatty() and not as_json) as progress:
        reports = index.update(collection=collection, max_file_mb=max_size, progress=progress, executor=run_on)
    if as_json:
        print(json.dumps([_report_json(r) for r in reports], ensure_ascii=False))
        return
    if not reports:
        err_console().print("nothing to update: add folders with `plait index add PATH`")
    for report in reports:
        _print_report(report)


@app.command("remove")
def remove(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(help="files or folders to forget")] = None,
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forget files or folders (the files are not touched), or with only --collection, a whole collection."""
    from plait.index.core import open_index

    report = open_index(state(ctx).runtime()).remove(paths or [], collection=collection)
    if as_json:
        print(json.dumps(asdict(report)))
    else:
        what = f"collection {collection}, " if report.collections else ""
        err_console().print(f"removed {what}{report.files:,} files, {report.chunks:,} chunks, "
                            f"{report.roots:,} added paths", highlight=False)


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


@app.command("status")
def status(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="list unsupported files one by one too")] = False,
    check: Annotated[bool, typer.Option(help="check the keyword and vector indexes against the database")] = True,
    as_json: JsonOpt = False,
) -> None:
    """What is indexed, which files were skipped and why, and whether the indexes agree with the database."""
    from plait.index.core import open_index

    st = open_index(state(ctx).runtime()).status(check=check)
    if as_json:
        print(json.dumps(asdict(st), ensure_ascii=False, default=str))
        return
    out = typer.echo
    model = f"{st.embed_model} ({st.dimensions}-d)" if st.embed_model else "none yet"
    out(f"embedding model: {model}")
    out(f"indexed: {st.files:,} files, {st.documents:,} documents, {st.chunks:,} chunks "
        f"in {len(st.collections)} collection(s)")
    for c in st.collections:
        out(f"  {c.name}: {c.files:,} files, {c.chunks:,} chunks, {c.skipped:,} skipped; "
            f"paths: {', '.join(c.roots) or '-'}")
    if st.pending:
        out(f"unfinished: {st.pending:,} files from a stopped run; `plait index update` finishes them")
    if st.consistency is not None:
        k = st.consistency
        repaired = f" (repaired: {k.missing:,} added, {k.extra:,} removed)" if k.missing or k.extra else ""
        verdict = "consistent" if k.consistent else "INCONSISTENT"
        out(f"check: keyword index consistent; vector index ({k.kind}) {verdict}: {k.indexed:,} of {k.chunks:,} "
            f"chunks{repaired}")
    out(f"size on disk: database {_size(st.database_bytes)}, vector index {_size(st.vector_bytes)}")
    unsupported = [s for s in st.skipped if s.kind == "unsupported"]
    others = [s for s in st.skipped if s.kind != "unsupported"]
    if others or (show_all and unsupported):
        out(f"skipped ({len(others) + (len(unsupported) if show_all else 0):,}):")
        for s in others + (unsupported if show_all else []):
            out(f"  {s.path}\n      {s.reason}")
    if unsupported and not show_all:
        suffixes = Counter(Path(s.path).suffix.lower() or "(none)" for s in unsupported)
        kinds = ", ".join(f"{suffix} {n:,}" for suffix, n in suffixes.most_common(8))
        out(f"not a format plait reads: {len(unsupported):,} files ({kinds}); --all lists them")
    if st.partial:
        out(f"partly read ({len(st.partial):,}):")
        for s in st.partial:
            out(f"  {s.path}\n      {s.reason}")


@app.command("list")
def list_(
    ctx: typer.Context,
    collection: CollectionOpt = None,
    files: Annotated[bool, typer.Option("--files", help="list the files, with their state")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The collections (name, added paths, counts), or with --files, every file."""
    from plait.index.core import open_index

    index = open_index(state(ctx).runtime())
    if files:
        rows = index.files(collection)
        if as_json:
            print(json.dumps([asdict(r) for r in rows], ensure_ascii=False))
            return
        for r in rows:
            note = f"  ({r.reason})" if r.reason else ""
            typer.echo(f"{r.collection}\t{r.state}\t{r.chunks}\t{r.path}{note}")
        return
    cols = [c for c in index.collections() if collection is None or c.name == collection]
    if as_json:
        print(json.dumps([asdict(c) for c in cols], ensure_ascii=False))
        return
    if not cols:
        typer.echo("no collections yet: add one with `plait index add PATH --collection NAME`")
    for c in cols:
        typer.echo(f"{c.name}: {c.files:,} files, {c.documents:,} documents, {c.chunks:,} chunks, "
                   f"{c.skipped:,} skipped")
        for root in c.roots:
            typer.echo(f"  {root}")


@app.command("rebuild")
def rebuild(ctx: typer.Context) -> None:
    """Rebuild the vector index from the embeddings in the database (it is also repaired automatically)."""
    from plait.index.core import open_index

    report = open_index(state(ctx).runtime()).rebuild_vectors()
    err_console().print(f"vector index ({report.kind}) rebuilt: {report.indexed:,} chunks", highlight=False)
