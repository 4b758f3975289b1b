"""`plait eval` and `plait eval history`: search and ask measured on your own index, and the record of runs."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from plait.cli.common import err_console, state

app = typer.Typer(help="Measure search and ask on your own index (no labels needed); compare runs over time.",
                  invoke_without_command=True)


@app.callback()
def run(
    ctx: typer.Context,
    queries: Annotated[int, typer.Option(help="held-out sentences searched for (0: skip)")] = 100,
    questions: Annotated[int, typer.Option(help="questions the chat model writes and ask answers (0: skip)")] = 20,
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="only this collection")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="chat model (default: chat_model setting)")]
    = None,
    seed: Annotated[int, typer.Option(help="picks the same sentences and passages again")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print the run as JSON")] = False,
) -> None:
    """Build a known-item set (held-out sentences) and a question set from your index, run search and ask
    on them, print MRR@10, recall@10, answer support and abstention, and keep the run (`plait eval history`)."""
    if ctx.invoked_subcommand is not None:
        return
    from plait.evaluation import evaluate

    console = err_console()
    result = evaluate(state(ctx).runtime(), queries=queries, questions=questions, seed=seed, collection=collection,
                      chat_model=model, progress=None if as_json else lambda m: console.print(f"[dim]{m}[/]"))
    if as_json:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    _print_run(result.as_dict())


def _print_run(run: dict[str, Any]) -> None:
    known = run["metrics"].get("known_item")
    asked = run["metrics"].get("questions")
    print(f"run {run['id']} · {run['started_at']} · {run['seconds']} s · embed {run['embed_model']} · "
          f"chat {run['chat_model']}" + (f" · collection {run['collection']}" if run["collection"] else ""))
    if known:
        print(f"known items ({run['sizes'].get('queries', 0)} held-out sentences):")
        for mode in ("keyword", "vector", "hybrid"):
            m = known[mode]
            print(f"  {mode:8} MRR@10 {m['mrr@10']:.3f}  recall@10 {m['recall@10']:.3f}  {m['query_ms_p50']} ms")
    if asked:
        print(f"questions: {asked['kept']} kept of {asked['written']} written")
        if "answer_support" in asked:
            print(f"  answer support {asked['answer_support']:.2f}  abstention {asked['abstention']:.2f}  "
                  f"warned {asked['warned']:.2f}  source found {asked['source_found']:.2f}  "
                  f"{asked['seconds_p50']} s per answer")


@app.command()
def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="most recent runs to show")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per run")] = False,
) -> None:
    """Past runs, newest first: did a new model, a setting or a re-index make things better or worse?"""
    from plait.evaluation import history as runs

    found = runs(state(ctx).runtime().store, limit=limit)
    if as_json:
        for r in found:
            print(json.dumps(r.as_dict(), ensure_ascii=False))
        return
    if not found:
        print("no evaluation runs yet; run `plait eval`")
        return
    print(f"{'run':>4}  {'when':19}  {'embed':10} {'chat':10} {'hybrid MRR':>10} {'recall':>6} {'support':>7} "
          f"{'abstain':>7}")
    for r in found:
        known = r.metrics.get("known_item", {}).get("hybrid", {})
        asked = r.metrics.get("questions", {})

        def cell(value: object, width: int) -> str:
            return f"{value:>{width}.3f}" if isinstance(value, float | int) else f"{'-':>{width}}"

        print(f"{r.id:>4}  {r.started_at[:19]:19}  {r.embed_model[:10]:10} {r.chat_model[:10]:10} "
              f"{cell(known.get('mrr@10'), 10)} {cell(known.get('recall@10'), 6)} "
              f"{cell(asked.get('answer_support'), 7)} {cell(asked.get('abstention'), 7)}")
