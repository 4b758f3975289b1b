"""Evaluation on the person's own index: known-item search and generated questions, kept per run.

``evaluate(runtime)`` runs it and records the run; ``history(runtime.store)`` lists past runs. See
:mod:`plait.evaluation.run`.
"""

from plait.evaluation.history import EvalRun, history
from plait.evaluation.run import evaluate

__all__ = ["EvalRun", "evaluate", "history"]
