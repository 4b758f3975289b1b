"""Property-based: schemathesis generates requests from the server's own OpenAPI document (valid and
invalid ones) against the app with fake models. None may cause a 5xx, and answers must match the
document."""

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from plait.serve.app import create_app
from plait.serve.auth import KeyStore, ensure_local_key
from tests.fakes import fake_runtime

# Built at import: schemathesis reads the document to generate the tests. Its own home, removed at exit.
_home = Path(tempfile.mkdtemp(prefix="plait-schemathesis-"))
atexit.register(shutil.rmtree, _home, ignore_errors=True)
_runtime = fake_runtime(_home)
_app = create_app(_runtime.settings, runtime=_runtime)
_key = ensure_local_key(KeyStore(_runtime.store), _home)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_errors(case: Any) -> None:
    # positive_data_acceptance is left out: valid-looking requests are rightly refused for reasons a schema
    # cannot express (model "0" does not exist; an embedding model cannot chat).
    case.call_and_validate(headers={"Authorization": f"Bearer {_key}"},
                           excluded_checks=[schemathesis.checks.positive_data_acceptance])
