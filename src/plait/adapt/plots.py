"""PNG plots of a run: learning curves (per-epoch metrics by split) and the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plait.errors import MissingDependency


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependency("training plots", extra="adapt", package="matplotlib") from exc
    matplotlib.use("Agg")  # files only: no display needed, and safe from any thread
    import matplotlib.pyplot as plt

    return plt


def learning_curves(metrics: dict[str, dict[str, list[tuple[int, float]]]], path: Path, *,
                    title: str = "") -> Path | None:
    """Loss and the headline metrics per epoch, one panel each, a line per split. None if nothing to draw."""
    panels = [key for key in ("loss", "macro_f1", "accuracy", "rmse", "mae")
              if any(key in by_key for by_key in metrics.values())]
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=True):
        for split, colour in (("train", "tab:blue"), ("validation", "tab:orange"), ("test", "tab:green")):
            points = metrics.get(split, {}).get(key)
            if points:
                ax.plot([e for e, _ in points], [v for _, v in points], marker="o", label=split, color=colour)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def confusion_matrix(confusion: Sequence[Sequence[int]], labels: Sequence[str], path: Path, *,
                     title: str = "confusion matrix (test)") -> Path:
    plt = _pyplot()
    k = len(labels)
    size = max(3.5, 0.6 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(k), labels=list(labels), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max((max(row) for row in confusion), default=0)
    for i, row in enumerate(confusion):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
