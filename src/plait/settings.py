"""Typed settings and where each value came from.

Resolution order, highest first (the same for every setting):

1. an explicit argument (``load_settings(chat_model=...)``, a CLI flag);
2. the config file, ``$PLAIT_HOME/config.toml``;
3. the environment, ``PLAIT_<NAME>`` (e.g. ``PLAIT_CHAT_MODEL``);
4. the built-in default.

``home`` itself decides where the config file is, so it resolves as argument > ``PLAIT_HOME`` > ``~/.plait``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from plait.errors import ConfigError

Source = Literal["argument", "config file", "environment", "default"]

CONFIG_FILE = "config.toml"
ENV_PREFIX = "PLAIT_"


def _default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class Settings(BaseModel):
    """Everything plait can be configured with. Unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(default_factory=lambda: Path("~/.plait").expanduser(),
                       description="folder holding the config file, database, model files and logs")
    chat_model: str = Field("smollm2", description="catalog name of the default chat/generation model")
    embed_model: str = Field("minilm-q8", description="catalog name of the default embedding model")
    threads: int = Field(default_factory=_default_threads, ge=1, description="CPU threads per model")
    generation_threads: int = Field(0, ge=0, description="llama.cpp threads (0: `threads`)")
    context_length: int = Field(2048, ge=128, description="context window for llama.cpp models (tokens, per slot)")
    generation_slots: int = Field(4, ge=1, le=64, description="requests one llama.cpp model answers at once, "
                                  "sharing each decode step (continuous batching); more wait their turn")
    prompt_chunk_tokens: int = Field(256, ge=16, description="prompt tokens llama.cpp reads per step between "
                                     "decode steps, so a long prompt does not stall the other answers")
    prompt_cache_mib: int = Field(256, ge=0, description="RAM for llama.cpp's cache of earlier prompts (MiB; 0: "
                                  "off), so a conversation's next turn reads only what is new")
    max_tokens: int = Field(512, ge=1, description="default cap on generated tokens")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="default sampling temperature")
    max_loaded_models: int = Field(3, ge=1, description="models kept loaded at once (least recently used unloaded)")
    idle_unload_seconds: float = Field(900.0, ge=0, description="unload a model unused this long (0: never)")
    embed_batch_size: int = Field(64, ge=1, description="texts per embedding batch")

    # The server (`plait serve` / `plait up`).
    host: str = Field("127.0.0.1", description="address the server listens on (127.0.0.1: this machine only)")
    port: int = Field(8434, ge=1, le=65535, description="port the server listens on")
    cors_origins: tuple[str, ...] = Field((), description="browser origins allowed to call the server, "
                                          "comma-separated (none: CORS off)")
    api_auth: bool = Field(True, description="require an API key on every server route except /health")
    max_request_bytes: int = Field(8_000_000, ge=1024, description="largest request body the server accepts")
    rate_limit_per_minute: int = Field(600, ge=0, description="requests per minute for a new API key (0: no limit)")
    generation_queue: int = Field(16, ge=1, description="generation requests waiting per model before 429")
    cache_entries: int = Field(4096, ge=0, description="responses kept in the server's cache (0: cache off)")
    cache_ttl_seconds: float = Field(600.0, ge=0, description="how long a cached response stays valid")
    batch_window_ms: float = Field(3.0, ge=0, description="how long the server gathers concurrent embedding "
                                  "requests into one batch")
    # Batching pays where a call has a large fixed cost (PyTorch); the int8 ONNX embedder is compute-bound
    # and already runs concurrent requests on parallel sessions, so for it 1 is as fast (bench/serve.py).
    batch_max: int = Field(64, ge=1, description="most texts in one server batch (1: no micro-batching)")

    trusted_hosts: tuple[str, ...] = Field((), description="host names the server answers to besides 127.0.0.1, "
                                           "localhost, [::1] and `host`, comma-separated (a guard against DNS "
                                           "rebinding)")
    api_docs: bool = Field(True, description="serve the API's documentation at /docs (from files installed with "
                           "plait; no CDN)")
    tls_cert: str | None = Field(None, description="TLS certificate (PEM) for the server; beyond loopback plait "
                                 "makes a self-signed one when none is given")
    tls_key: str | None = Field(None, description="the TLS certificate's private key (PEM)")
    webhook_rate_per_minute: int = Field(60, ge=0, description="webhook deliveries accepted per workflow per "
                                         "minute (0: no limit)")
    webhook_pending_bytes: int = Field(50_000_000, ge=0, description="bytes of webhook items a workflow may have "
                                       "waiting before deliveries are refused (0: no limit)")

    # Privacy: personal data found by the redact task is replaced by placeholders before it leaves.
    redact_remote: bool = Field(True, description="redact personal data from requests to remote model servers "
                                "(a model's own `redact` option overrides it)")
    redact_logs: bool = Field(True, description="redact e-mail addresses, phone, card and IBAN numbers and IP "
                              "addresses from the server's log lines")
    redact_index: bool = Field(False, description="redact personal data from documents before they are indexed")

    @field_validator("cors_origins", "trusted_hosts", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        # From the environment or `plait config set` the list arrives as one comma-separated string.
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @property
    def database_path(self) -> Path:
        return self.home / "plait.db"

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"


@dataclass(frozen=True)
class ResolvedSettings:
    settings: Settings
    sources: dict[str, Source]


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}); fix or delete it") from exc
    unknown = set(data) - set(Settings.model_fields) - {"home"}
    if unknown:
        raise ConfigError(
            f"config file {path} has unknown setting(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(Settings.model_fields))}"
        )
    data.pop("home", None)  # the config file lives in home, so it cannot move it
    return data


def _read_environment(environ: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in environ and name != "home":
            values[name] = environ[key]
    return values


def resolve_settings(environ: dict[str, str] | None = None, **arguments: Any) -> ResolvedSettings:
    """Resolve settings and record, for each one, which layer supplied it."""
    env = dict(os.environ if environ is None else environ)
    arguments = {k: v for k, v in arguments.items() if v is not None}
    unknown = set(arguments) - set(Settings.model_fields)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}")

    sources: dict[str, Source] = {}
    if "home" in arguments:
        home, sources["home"] = Path(arguments.pop("home")), "argument"
    elif env.get("PLAIT_HOME"):
        home, sources["home"] = Path(env["PLAIT_HOME"]), "environment"
    else:
        home, sources["home"] = Path("~/.plait"), "default"
    home = home.expanduser()

    layers: list[tuple[Source, dict[str, Any]]] = [
        ("environment", _read_environment(env)),
        ("config file", _read_config_file(home / CONFIG_FILE)),
        ("argument", arguments),
    ]
    merged: dict[str, Any] = {"home": home}
    for source, values in layers:  # lowest first, so higher layers overwrite
        for key, value in values.items():
            merged[key] = value
            sources[key] = source
    for key in Settings.model_fields:
        sources.setdefault(key, "default")
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        raise ConfigError(
            f"setting '{field}' from the {sources.get(field, 'default')} is invalid: {err['msg']}"
        ) from exc
    return ResolvedSettings(settings, sources)


def load_settings(**arguments: Any) -> Settings:
    """The effective settings: arguments > config file > PLAIT_* environment > defaults."""
    return resolve_settings(**arguments).settings


def write_setting(home: Path, key: str, value: str) -> None:
    """Set one key in the config file, validating it first (``plait config set``)."""
    import tomli_w

    if key not in Settings.model_fields or key == "home":
        raise ConfigError(f"unknown setting '{key}'; known: {', '.join(sorted(set(Settings.model_fields) - {'home'}))}")
    path = home / CONFIG_FILE
    data = _read_config_file(path)
    data[key] = value
    try:
        coerced = Settings(home=home, **data)
    except ValidationError as exc:
        raise ConfigError(f"invalid value for '{key}': {exc.errors()[0]['msg']}") from exc
    data[key] = getattr(coerced, key)
    home.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(data), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash never leaves half a config file
