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
import socket
from typing import Any

from plait.errors import ClusterError, MissingDependency, PlaitError

LOCAL = ("", "local")
# A private instance moves only texts and vectors through its object store; Ray's default (30% of the
# machine's memory) would reserve gigabytes a laptop needs for its models.
LOCAL_OBJECT_STORE_BYTES = 512 * 1024 * 1024
REACH_TIMEOUT_S = 5.0  # a head node on a network answers a TCP connect well within this
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a single-node Ray on 127.0.0.1 (as on a laptop OS)


def import_ray() -> Any:
    """The ``ray`` module, or a MissingDependency that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency("running on Ray (--executor ray, serve --ray)", extra="ray", package="ray") from exc
    return ray


def connect(address: str | None = None, *, cpus: int | None = None, object_store_mb: int | None = None) -> Any:
    """Connect this process to Ray (once) and return the ``ray`` module."""
    address = address if address is not None else os.environ.get("RAY_ADDRESS", "")
    local = address in LOCAL
    if local:
        # Read by Ray when it is imported, and by the processes it starts: every Ray process on 127.0.0.1.
        os.environ.setdefault(LOOPBACK_ENV, "0")
    ray = import_ray()
    if ray.is_initialized():
        return ray
    try:
        if local:
            _loopback_only(ray)
            memory = (object_store_mb * 1024 * 1024) if object_store_mb else LOCAL_OBJECT_STORE_BYTES
            ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=memory,
                     logging_level=logging.WARNING)
            _check_loopback(ray)
        else:
            _reachable(address)
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        where = "a local Ray instance" if local else f"the Ray cluster at {address}"
        raise ClusterError(f"could not start or reach {where} ({exc}); check the address, or leave --address "
                           "out to run on this machine") from exc
    return ray


def _reachable(address: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """Fail at once when nothing answers at a cluster's ``HOST:PORT`` (or ``ray://HOST:PORT``): Ray itself
    keeps retrying for minutes before it gives up. ``auto`` is found by Ray on this machine: not checked."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(f"nothing answers at {hostport} ({exc.strerror or exc}); is the Ray head node running "
                           "there? Leave --address out to run on this machine") from exc


def _loopback_only(ray: Any) -> None:
    """Ray decides to use the machine's network address when it is imported; a process that imported it
    before the environment said otherwise is told again here."""
    if os.environ.get(LOOPBACK_ENV) != "0":
        raise ClusterError(f"{LOOPBACK_ENV} is set to '{os.environ[LOOPBACK_ENV]}', which would make plait's own Ray "
                           "instance reachable from the network; unset it, or give --address of a cluster")
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def _check_loopback(ray: Any) -> None:
    address = ray.util.get_node_ip_address()
    if not address.startswith("127."):
        ray.shutdown()
        raise ClusterError(f"the local Ray instance came up on {address}, not on loopback; it was stopped. Give "
                           "--address of a cluster to run on the network")


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
