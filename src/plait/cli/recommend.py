"""`plait recommend train|for|predict`: learn tastes from a ratings table, then suggest and predict."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.common import state
from plait.cli.tasks import print_json, run_task
from plait.errors import InputError

app = typer.Typer(help="Recommendations from a ratings table: train a model, then ask it for a user.",
                  no_args_is_help=True)

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="the recommender's name (from `recommend train`)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
RatedOpt = Annotated[list[str] | None, typer.Option(
    "--rated", help="ITEM=RATING the user gave (repeatable): adds to a known user's history, or lets a new "
                    "user get personal recommendations")]


def _parse_rated(rated: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in rated or []:
        item, sep, value = pair.rpartition("=")
        try:
            out[item.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not item.strip():
            raise InputError(f"--rated takes ITEM=RATING (e.g. --rated 50=5), not '{pair}'")
    return out


@app.command()
def train(
    ctx: typer.Context,
    ratings: Annotated[Path, typer.Argument(help="CSV/TSV of user, item, rating[, timestamp] (header optional)",
                                            show_default=False)],
    name: Annotated[str, typer.Option("--name", "-n", help="catalog name for the trained model", show_default=False)],
    items: Annotated[Path | None, typer.Option(help="CSV/TSV of item id and texts (title, genres, description…): "
                                                    "content-based scoring and cold-start items")] = None,
    embed_model: Annotated[str | None, typer.Option(help="embedding model for item texts "
                                                         "(default: embed_model setting)")] = None,
    like_threshold: Annotated[float | None, typer.Option(help="rating that counts as liked (default: 3/4 up "
                                                               "the scale, 4 on 1-5)")] = None,
    seed: Annotated[int, typer.Option(help="random seed (split and initialisation)")] = 0,
    replace: Annotated[bool, typer.Option("--replace", help="retrain an existing model of that name")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a recommender on a ratings table and save it in the catalog."""
    from plait.tasks.recommend import RecommendConfig, train_recommender

    config = RecommendConfig(like_threshold=like_threshold, seed=seed)
    rt = state(ctx).runtime()
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status("training…") as status:
            report = train_recommender(ratings, name=name, items=items, config=config, embed_model=embed_model,
                                       replace=replace, runtime=rt, progress=lambda m: status.update(m.strip()))
    else:
        report = train_recommender(ratings, name=name, items=items, config=config, embed_model=embed_model,
                                   replace=replace, runtime=rt)
    if as_json:
        print(json.dumps({**asdict(report), "path": str(report.path)}))
        return
    m = report.metrics
    print(f"trained '{report.name}' on {report.ratings:,} ratings: {report.users:,} users, {report.items:,} items"
          + (f" ({report.cold_items:,} with text only)" if report.cold_items else ""))
    if report.duplicates:
        print(f"  {report.duplicates:,} repeated user-item ratings: kept the last of each")
    print("  blend: " + ", ".join(f"{k} {w:.2f}" for k, w in report.blend_weights.items())
          + (f"; content weight {report.content_weight:g}" if report.content_weight else ""))
    if "holdout_rmse" in m:
        print(f"  held-out RMSE {m['holdout_rmse']:.4f}, precision@10 {m['holdout_precision_at_10']:.3f}")
    print(f"  {m['train_seconds']:.0f} s; ask it with: plait recommend for USER --model {report.name}")


@app.command("for")
def for_user(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="user id as in the ratings table (a new id gets popular items)",
                                        show_default=False)],
    model: ModelOpt,
    k: Annotated[int, typer.Option("-k", "--top", help="how many items")] = 10,
    strategy: Annotated[str, typer.Option(help="hybrid, collaborative, content, popular or rating")] = "hybrid",
    rated: RatedOpt = None,
    include_rated: Annotated[bool, typer.Option("--include-rated", help="also list items the user rated")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Top-k items for a user, with predicted ratings."""
    task, result = run_task(ctx, "recommend", {"user": user, "model": model, "k": k, "strategy": strategy,
                                               "ratings": _parse_rated(rated) or None,
                                               "include_rated": include_rated})
    if not result.known_user and not rated:
        print(f"plait: note: {model} has no ratings from user '{user}'; showing popular items they are "
              "likely to like (give some with --rated ITEM=RATING for personal ones)", file=sys.stderr)
    if as_json:
        print_json(task, result)
        return
    for rank, item in enumerate(result.items, 1):
        because = f"  (like {item.because})" if item.because else ""
        print(f"{rank:3}. {item.title}  [{item.item}]  predicted {item.predicted_rating:.1f}{because}")


@app.command()
def predict(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="user id", show_default=False)],
    item: Annotated[str, typer.Argument(help="item id", show_default=False)],
    model: ModelOpt,
    rated: RatedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict the rating a user would give an item."""
    from plait.tasks.recommend import predict_rating

    p = predict_rating(user, item, model=model, ratings=_parse_rated(rated), runtime=state(ctx).runtime())
    if as_json:
        print(json.dumps(asdict(p), ensure_ascii=False))
        return
    notes = [n for n, on in (("new user: from item averages", not p.known_user and not rated),
                             ("item known by its text only", p.cold_item)) if on]
    print(f"{p.rating:.2f}  {p.title}  (P(like) {p.p_like:.2f}" + "".join(f"; {n}" for n in notes) + ")")
