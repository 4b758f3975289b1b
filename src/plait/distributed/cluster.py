"""Connecting to Ray: an existing cluster by address, or a private Ray instance on this machine.

``address`` is what ``ray.init`` takes: ``auto`` (the cluster this machine is a node of), ``HOST:PORT``
of a head node, or ``ray://HOST:10001`` (Ray Client). Without one, plait uses ``RAY_ADDRESS`` when it is set,
else starts a Ray instance of its own for the command's lifetime, bound to 127.0.0.1 only: Ray otherwise
binds every process to the machine's network address, where other machines could reach it.

A process already connected (a notebook, a test) keeps its connection.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from plait.errors import ClusterError, MissingDependency, PlaitError

LOCAL = ("", "local")
# A private instance moves only texts and vectors through its object store; Ray's default (30% of the
# machine's memory) would reserve gigabytes a laptop needs for its models.
LOCAL_OBJECT_STORE_BYTES = 512 * 1024 * 1024
INSTALL_HINT = "install it with: pip install 'plait[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or a MissingDependency that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency("running on Ray (--executor ray, serve --ray)", extra="ray", package="ray") from exc
    return ray


def connect(address: str | None = None, *, cpus: int | None = None) -> Any:
    """Connect this process to Ray (once) and return the ``ray`` module."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    address = address if address is not None else os.environ.get("RAY_ADDRESS", "")
    try:
        if address in LOCAL:
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # every Ray process on 127.0.0.1
            ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                     logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        where = "a local Ray instance" if address in LOCAL else f"the Ray cluster at {address}"
        raise ClusterError(f"could not start or reach {where} ({exc}); check the address, or leave --address "
                           "out to run on this machine") from exc
    return ray


def cluster_cpus() -> int:
    """CPUs the connected cluster offers (all nodes)."""
    ray = import_ray()
    return int(ray.cluster_resources().get("CPU", 1))


def failure(exc: BaseException, what: str) -> PlaitError:
    """A Ray failure as plait reports it: a plait error a worker raised (a bad input, a missing model file)
    is that error, as if it had happened here; the cluster's own failures (a worker that kept dying, a lost
    node, a timeout) become one ClusterError that says nothing was written for the work."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, PlaitError):
        return cause
    if isinstance(exc, PlaitError):
        return exc
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return ClusterError(f"{what} failed on the Ray cluster ({type(exc).__name__}: {first}); nothing was "
                        "written for it: run the command again to finish")
