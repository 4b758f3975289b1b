"""`plait serve` and `plait up`: run the HTTP server."""

from __future__ import annotations

import logging
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from plait.cli.common import state
from plait.errors import ConfigError
from plait.runtime import Runtime
from plait.settings import Settings, load_settings

LOOPBACK = {"127.0.0.1", "::1", "localhost"}

Host = Annotated[str | None, typer.Option(help="address to listen on (default: host setting, 127.0.0.1)")]
Port = Annotated[int | None, typer.Option(help="port (default: port setting, 8434)")]
AccessLogOpt = Annotated[str | None, typer.Option(
    "--access-log", help="file for the access log, '-' for standard error (default: $PLAIT_HOME/logs/access.log)")]
TlsCert = Annotated[str | None, typer.Option("--tls-cert", help="TLS certificate (PEM); beyond loopback plait makes "
                                             "a self-signed one when none is given")]
TlsKey = Annotated[str | None, typer.Option("--tls-key", help="the certificate's private key (PEM)")]
NoTls = Annotated[bool, typer.Option("--no-tls", help="listen beyond loopback WITHOUT TLS (anyone on the network "
                                     "can read the traffic, API keys included)")]
RayOpt = Annotated[bool, typer.Option("--ray", help="serve the models from Ray Serve deployments (needs plait[ray])")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="with --ray: the Ray cluster (auto, HOST:PORT, "
                                                "ray://HOST:10001; default: RAY_ADDRESS, else this machine)")]
RayModelOpt = Annotated[list[str] | None, typer.Option("--ray-model", help="with --ray: a model to deploy (repeatable; "
                                                       "default: the chat and embedding models)")]
ReplicasOpt = Annotated[int, typer.Option("--replicas", min=1, help="with --ray: replicas of each model")]
MaxReplicasOpt = Annotated[int | None, typer.Option("--max-replicas", min=1, help="with --ray: autoscale each "
                                                    "model from --replicas up to this")]
WorkerCpusOpt = Annotated[float | None, typer.Option("--worker-cpus", min=0.1, help="with --ray: CPUs per replica "
                                                     "(default: the threads setting)")]


@dataclass(frozen=True)
class RayServing:
    """What `plait serve --ray` deploys, and where."""

    address: str | None = None
    models: tuple[str, ...] = ()
    replicas: int = 1
    max_replicas: int | None = None
    worker_cpus: float | None = None


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(up)
    app.command("open")(open_page)


def _base_url(settings: Settings, tls: bool | None = None) -> str:
    """The server's address as a browser on this machine opens it (TLS beyond loopback, or when configured)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    shown = f"[{host}]" if ":" in host else host
    if tls is None:
        tls = bool(settings.tls_cert) or settings.host not in LOOPBACK
    return f"{'https' if tls else 'http'}://{shown}:{settings.port}"


def signin_url(settings: Settings, store: Any, tls: bool | None = None) -> str:
    """A one-time link that opens the web page signed in (see plait.web.sessions)."""
    from plait.web.sessions import new_signin_token

    return f"{_base_url(settings, tls)}/signin?token={new_signin_token(store)}"


def _tls(settings: Settings, no_tls: bool) -> tuple[str | None, str | None]:
    """The certificate and key to serve with: the owner's, a self-signed one beyond loopback, or none."""
    if no_tls:
        if settings.tls_cert:
            raise ConfigError("--no-tls and a TLS certificate (tls_cert) contradict each other; drop one")
        if settings.host not in LOOPBACK:
            print(f"plait: WARNING: listening on {settings.host} without TLS: the traffic, API keys included, can be "
                  "read on the network", file=sys.stderr)
        return None, None
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):
            raise ConfigError("give both --tls-cert and --tls-key (or the tls_cert and tls_key settings)")
        for path in (settings.tls_cert, settings.tls_key):
            if not Path(path).expanduser().is_file():
                raise ConfigError(f"TLS file {path} does not exist")
        return str(Path(settings.tls_cert).expanduser()), str(Path(settings.tls_key).expanduser())
    if settings.host in LOOPBACK:
        return None, None
    from plait.security.tls import fingerprint, machine_names, self_signed

    cert = self_signed(settings.home / "tls", machine_names((settings.host, *settings.trusted_hosts)))
    print(f"plait: TLS with a self-signed certificate ({'new' if cert.generated else 'kept'}), SHA-256 fingerprint "
          f"{fingerprint(cert.cert)}; check it when a client first connects ({cert.cert})", file=sys.stderr)
    return str(cert.cert), str(cert.key)


def _check_bind(settings: Settings) -> None:
    if settings.host not in LOOPBACK and not settings.api_auth:
        raise ConfigError(f"refusing to listen on {settings.host} with api_auth off: anyone on the network could "
                          "use it; turn api_auth on or listen on 127.0.0.1")
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {settings.host}:{settings.port} ({exc.strerror}); is another "
                              "server running there? choose another with --port") from exc


def _access_log(target: str | None, settings: Settings) -> None:
    logger = logging.getLogger("plait.access")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if target == "-":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        from logging.handlers import RotatingFileHandler

        from plait.security.permissions import private_dir

        path = Path(target) if target else settings.logs_dir / "access.log"
        private_dir(path.parent)
        handler = RotatingFileHandler(path, maxBytes=20_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    errors = logging.StreamHandler(sys.stderr)
    if settings.redact_logs:
        from plait.errors import MissingDependency
        from plait.security.logs import RedactingFilter
        from plait.security.pii import warm_up

        try:
            warm_up()  # Presidio imported now, before the server's threads start
        except MissingDependency as exc:
            print(f"plait: log lines are not redacted: {exc}", file=sys.stderr)
        else:
            for h in (handler, errors):
                h.addFilter(RedactingFilter())
    for name in ("plait.serve", "plait.security", "plait.workflows"):
        logging.getLogger(name).addHandler(errors)


def _deploy(settings: Settings, ray: RayServing) -> tuple[Runtime, list[str]]:
    """A runtime whose pool reaches the deployed models through Ray Serve, and the models deployed."""
    from plait.distributed.serving import Scaling, deploy, serve_through

    runtime = Runtime(settings)
    names = list(ray.models or (settings.chat_model, settings.embed_model))
    print(f"plait: deploying {', '.join(names)} on Ray Serve…", file=sys.stderr)
    served = deploy(runtime, names, Scaling(ray.replicas, ray.max_replicas, worker_cpus=ray.worker_cpus),
                    address=ray.address)
    return serve_through(runtime, served), names


def run_server(ctx: typer.Context, host: str | None, port: int | None, access_log: str | None,
               preload: bool, what: str, workflows: bool = False, tls_cert: str | None = None,
               tls_key: str | None = None, no_tls: bool = False, ray: RayServing | None = None) -> None:
    try:
        import uvicorn
    except ImportError as exc:
        from plait.errors import MissingDependency

        raise MissingDependency("the server", extra="serve", package="uvicorn") from exc
    from plait.serve.app import create_app
    from plait.serve.auth import KeyStore, ensure_local_key, local_key_path

    s = state(ctx)
    settings = load_settings(home=s.home, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key)
    _check_bind(settings)
    certfile, keyfile = _tls(settings, no_tls)
    _access_log(access_log, settings)
    runtime: Runtime | None = None
    deployed: list[str] = []
    if ray is not None:
        runtime, deployed = _deploy(settings, ray)
    app = create_app(settings, runtime=runtime, preload=preload, workflows=workflows)
    store = app.state.ctx.runtime.store
    tls = certfile is not None
    if settings.api_auth:
        ensure_local_key(KeyStore(store), settings.home)
        auth = f"API key: {local_key_path(settings.home)}"
        page = signin_url(settings, store, tls)
    else:
        auth = "API keys: off (api_auth = false)"
        page = _base_url(settings, tls) + "/"
    print(f"plait {what} on {_base_url(settings, tls)}  ({auth}; models {settings.chat_model}, "
          f"{settings.embed_model}; Ctrl-C stops)", file=sys.stderr)
    print(f"plait: open the page (this link works once; `plait open` makes another): {page}", file=sys.stderr)
    # timeout_graceful_shutdown: on Ctrl-C, answers in flight get this long to finish; then streams are
    # cancelled, which stops their generation cleanly.
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                    timeout_graceful_shutdown=10, server_header=False, ssl_certfile=certfile, ssl_keyfile=keyfile)
    finally:
        if runtime is not None:
            from plait.distributed.serving import undeploy

            undeploy(deployed)  # the cluster's replicas go with the server
            runtime.close()
    print("plait: server stopped", file=sys.stderr)


def serve(ctx: typer.Context, host: Host = None, port: Port = None, access_log: AccessLogOpt = None,
          preload: Annotated[bool, typer.Option(help="load the default models at startup")] = True,
          tls_cert: TlsCert = None, tls_key: TlsKey = None, no_tls: NoTls = False,
          ray: RayOpt = False, address: AddressOpt = None, ray_model: RayModelOpt = None, replicas: ReplicasOpt = 1,
          max_replicas: MaxReplicasOpt = None, worker_cpus: WorkerCpusOpt = None) -> None:
    """Run the HTTP server: OpenAI- and Ollama-compatible APIs and task routes (default http://127.0.0.1:8434).

    With --ray, the models run as Ray Serve deployments (one per model, with replicas) behind the same API."""
    options = RayServing(address, tuple(ray_model or ()), replicas, max_replicas, worker_cpus)
    if not ray and options != RayServing():
        raise ConfigError("--address, --ray-model, --replicas, --max-replicas and --worker-cpus go with --ray")
    if ray:
        from plait.distributed.cluster import import_ray

        import_ray()  # a missing extra is said before anything starts
    run_server(ctx, host, port, access_log, preload, "serving", tls_cert=tls_cert, tls_key=tls_key, no_tls=no_tls,
               ray=options if ray else None)


def up(ctx: typer.Context, host: Host = None, port: Port = None, access_log: AccessLogOpt = None,
       tls_cert: TlsCert = None, tls_key: TlsKey = None, no_tls: NoTls = False) -> None:
    """Start plait on the defaults: the server with the default models loaded, and the enabled workflows
    ($PLAIT_HOME/workflows) running on their triggers (http://127.0.0.1:8434)."""
    run_server(ctx, host, port, access_log, True, "is up", workflows=True, tls_cert=tls_cert, tls_key=tls_key,
               no_tls=no_tls)


def open_page(ctx: typer.Context,
              no_browser: Annotated[bool, typer.Option("--no-browser", help="print the link, do not open a "
                                                                               "browser")] = False) -> None:
    """Open plait's web page in a browser, signed in (a one-time link; the server must be running)."""
    import webbrowser

    rt = state(ctx).runtime()
    url = signin_url(rt.settings, rt.store)
    print(url)
    if not no_browser:
        webbrowser.open(url)
