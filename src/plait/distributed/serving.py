"""plait's models as Ray Serve deployments, behind plait's own server: ``plait serve --ray``.

Each model is one Serve application (``plait-<model>``) with one deployment of
:class:`~plait.distributed.serve_replica.ModelReplica`: a fixed number of replicas, or autoscaling between
``replicas`` and ``max_replicas`` on the requests each replica has in flight. Serve's HTTP proxy is off:
requests come in through plait's server (OpenAI, Ollama and task routes, keys, limits, the web page),
whose model pool gets, for each served model, a ``rayserve`` entry (:mod:`plait.models.rayserve`) that
asks the deployment's handle instead of loading the model. Everything else about the server is as
without Ray.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait.distributed.cluster import connect, failure
from plait.errors import InputError
from plait.models.catalog import Catalog
from plait.models.loading import ModelPool
from plait.models.spec import ModelSpec

if TYPE_CHECKING:
    from plait.runtime import Runtime
    from plait.store import Store

SERVABLE = {"chat", "complete", "embed", "classify"}
DEPLOYMENT = "model"
READY_SECONDS = 600.0


@dataclass(frozen=True)
class Scaling:
    """Replicas of each deployment: ``replicas``, or autoscaling from it up to ``max_replicas``."""

    replicas: int = 1
    max_replicas: int | None = None
    target_ongoing_requests: float = 2.0  # per replica, before autoscaling adds one
    worker_cpus: float | None = None  # CPUs each replica reserves (default: the threads setting)

    def options(self, threads: int) -> dict[str, Any]:
        if self.replicas < 1 or (self.max_replicas is not None and self.max_replicas < self.replicas):
            raise InputError("replicas must be at least 1, and max replicas at least replicas")
        actor = {"ray_actor_options": {"num_cpus": self.worker_cpus or threads}}
        if self.max_replicas is None or self.max_replicas == self.replicas:
            return {**actor, "num_replicas": self.replicas}
        return {**actor, "autoscaling_config": {
            "min_replicas": self.replicas, "initial_replicas": self.replicas, "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing_requests}}


def app_name(model: str) -> str:
    return "plait-" + re.sub(r"[^A-Za-z0-9_-]", "-", model)


def deploy(runtime: Runtime, models: Iterable[str], scaling: Scaling = Scaling(), *,
           address: str | None = None) -> dict[str, ModelSpec]:
    """Deploy (or redeploy with new scaling) each model; returns the ``rayserve`` entries that reach them."""
    from plait.distributed.shipping import ship

    connect(address)
    from plait.distributed.serve_replica import ModelReplica
    from ray import serve

    # No HTTP proxy: requests come through plait's server. Replicas log warnings and errors only, and so does
    # Serve's client here (its INFO lines would land on the person's terminal).
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # Serve's client in this process: warnings only
    serve.start(proxy_location="Disabled", logging_config={"log_level": "WARNING"})
    settings = runtime.settings
    served: dict[str, ModelSpec] = {}
    for name in dict.fromkeys(models):
        spec = runtime.catalog.get(name)
        if not set(spec.capabilities) & SERVABLE:
            raise InputError(f"model '{name}' ({', '.join(spec.capabilities)}) cannot be served on Ray: "
                             "chat, embedding and classification models can")
        config = {"batch_max": settings.batch_max, "batch_window_ms": settings.batch_window_ms}
        # Enough requests in a replica to fill a batch; more wait in the callers' queues (and make the
        # autoscaler add replicas).
        ongoing = max(settings.batch_max, 16)
        deployment = serve.deployment(name=DEPLOYMENT, max_ongoing_requests=ongoing, user_config=config,
                                      logging_config={"log_level": "WARNING"},
                                      **scaling.options(settings.threads))(ModelReplica)
        app = deployment.bind(ship(runtime, [spec.name]), spec.name)
        try:
            serve.run(app, name=app_name(spec.name), route_prefix=None, blocking=False)
        except Exception as exc:  # noqa: BLE001 - Serve raises RuntimeError for a replica that cannot start
            raise failure(exc, f"deploying '{spec.name}'") from exc
        served[spec.name] = ModelSpec(name=spec.name, backend="rayserve", capabilities=spec.capabilities,
                                      source=f"rayserve:{app_name(spec.name)}", description=spec.description,
                                      options={"app": app_name(spec.name), "deployment": DEPLOYMENT})
    return served


class ServedCatalog(Catalog):
    """The catalog, with the served models' entries pointing at their deployments."""

    def __init__(self, store: Store, served: dict[str, ModelSpec]) -> None:
        super().__init__(store)
        self.served = served

    def get(self, name: str) -> ModelSpec:
        spec = super().get(name)
        return self.served.get(spec.name, spec)


def serve_through(runtime: Runtime, served: dict[str, ModelSpec]) -> Runtime:
    """Make ``runtime``'s model pool reach the served models through Ray Serve (others still load here)."""
    runtime.pool.close()
    runtime.catalog = ServedCatalog(runtime.store, served)
    runtime.pool = ModelPool(runtime.catalog, runtime.settings)
    return runtime


def replicas(model: str) -> dict[str, int]:
    """The deployment's replicas by state (RUNNING, STARTING…), from Serve's status."""
    from ray import serve

    app = serve.status().applications.get(app_name(model))
    if app is None:
        return {}
    status = app.deployments[DEPLOYMENT]
    return {str(k): int(v) for k, v in status.replica_states.items()}


def undeploy(models: Iterable[str] | None = None) -> None:
    """Remove the models' applications, or with no list, shut Serve down."""
    from ray import serve

    if models is None:
        serve.shutdown()
        return
    for name in models:
        serve.delete(app_name(name))
