"""plait's exceptions.

Every error plait raises on purpose is a :class:`PlaitError`; errors of other libraries are wrapped at
the boundary (``raise ModelLoadError(...) from exc``). Messages are one line and say what to do.
The CLI turns them into an exit code (``exit_code``) and the server into a problem response.

    PlaitError
    ├── ConfigError            bad setting, config file or environment value
    ├── StoreError             the SQLite database cannot be opened or migrated
    │   └── (plait.store.failures) DiskFull, ReadOnlyHome, DamagedDatabase, NewerDatabase
    ├── InputError             text, file or request the user gave cannot be used
    ├── MissingDependency      an optional extra or system package is not installed
    └── ModelError
        ├── ModelNotFound      no catalog entry by that name (lists the known ones)
        ├── ModelFileError     a model file is missing or corrupt (names the file)
        ├── CapabilityError    the model cannot do what was asked (e.g. embed with a chat-only model)
        ├── BackendError       the backend failed while running (remote server down, bad response…)
        │   ├── ModelOutputError   the model's answers never fit what was asked (a JSON schema…)
        │   └── ClusterError       Ray could not be reached, or its workers kept failing
        └── CatalogError       an entry cannot be added or removed (duplicate, built-in, bad source)
"""

from __future__ import annotations

from collections.abc import Iterable


class PlaitError(Exception):
    """Base of every error plait raises on purpose."""

    exit_code = 1


class ConfigError(PlaitError):
    exit_code = 2


class StoreError(PlaitError):
    exit_code = 3


class InputError(PlaitError):
    exit_code = 4


class ContextTooLong(InputError):
    """The input does not fit the model's context window (the caller must shorten it)."""


class MissingDependency(PlaitError):
    """An optional Python extra or system package is missing."""

    exit_code = 5

    def __init__(self, feature: str, *, extra: str | None = None, package: str | None = None,
                 system: str | None = None) -> None:
        if system:
            how = f"install the system package '{system}' (Debian: apt-get install {system})"
        elif extra:
            how = f"install it with: pip install 'plait[{extra}]'"
            if package:
                how += f" (provides {package})"
        else:
            how = f"install it with: pip install {package}"
        super().__init__(f"{feature} needs {package or system or extra}, which is not installed; {how}")
        self.feature, self.extra, self.package, self.system = feature, extra, package, system


class ModelError(PlaitError):
    exit_code = 6


class ModelNotFound(ModelError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        names = ", ".join(sorted(known)) or "(none)"
        super().__init__(
            f"unknown model '{name}'; known models: {names}. "
            "Add one with `plait models add NAME SOURCE` or see `plait models list`."
        )
        self.name = name


class ModelFileError(ModelError):
    def __init__(self, path: object, problem: str, fix: str) -> None:
        super().__init__(f"model file {path} {problem}; {fix}")
        self.path = path


class CapabilityError(ModelError):
    pass


class BackendError(ModelError):
    pass


class ModelOutputError(BackendError):
    pass


class ClusterError(BackendError):
    pass


class CatalogError(ModelError):
    pass
