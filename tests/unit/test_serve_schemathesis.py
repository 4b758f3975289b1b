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
# schemathesis calls the app as http://testserver: a name the server must be told to trust.
_app = create_app(_runtime.settings.model_copy(update={"trusted_hosts": ("testserver",)}), runtime=_runtime)
_key = ensure_local_key(KeyStore(_runtime.store), _home)
# Tasks that other test modules register (tests/workflow_helpers.py: test_flaky fails on purpose) are not
# plait's; whether they are in the registry depends on which test file was imported first.
schema = schemathesis.openapi.from_asgi("/openapi.json", _app).exclude(path_regex="^/v1/test_")


# The same generated requests on every run, so CI cannot fail by chance; to explore further, run it with
# derandomize=False and more examples (40 per route found nothing on 2026-12-03).
@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
def test_no_server_errors(case: Any) -> None:
    # Two checks are left out, for reasons a schema cannot express:
    # - positive_data_acceptance: schema-valid requests are rightly refused when model "0" does not exist
    #   or an embedding model is asked to chat;
    # - negative_data_rejection: pydantic's lax mode coerces some off-schema values (false for 0.0) rather
    #   than refusing them, which is harmless.
    # Every other check stays: no 5xx, documented status codes, content types and response schemas.
    case.call_and_validate(headers={"Authorization": f"Bearer {_key}"},
                           excluded_checks=[schemathesis.checks.positive_data_acceptance,
                                            schemathesis.checks.negative_data_rejection])
