"""Adapt: make a general model the person's own, from their examples.

``tune(name, data, TuneConfig(...))`` loads labelled examples, trains a head on frozen embeddings, a full
fine-tune or LoRA (or LoRA on a chat model for an instruction task), records the run, and registers the
result as ``name@V`` in the catalog, where classify, the server, workflows and ``plait explain`` use it.
Heavy libraries (torch, transformers, peft, scikit-learn, matplotlib) are imported only when used.
"""

from plait.adapt.config import TuneConfig
from plait.adapt.datasets import Dataset, Example, load_dataset
from plait.adapt.tune import TuneResult, tune

__all__ = ["Dataset", "Example", "TuneConfig", "TuneResult", "load_dataset", "tune"]
