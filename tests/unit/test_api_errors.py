"""How plait's errors become HTTP errors: the status and code a client can act on."""

from __future__ import annotations

from plait.errors import BackendError, ContextTooLong, InputError, ModelOutputError
from plait.serve.errors import from_plait_error


def test_only_an_input_longer_than_the_context_is_context_length_exceeded() -> None:
    too_long = from_plait_error(ContextTooLong("the input is longer than smollm2's context window"))
    assert (too_long.status, too_long.code) == (400, "context_length_exceeded")
    assert from_plait_error(InputError("bad")).code != "context_length_exceeded"


def test_a_backend_failing_on_bad_json_is_a_server_error_not_the_clients() -> None:
    # A remote server answering something that is not JSON raises ValueError inside the backend.
    try:
        try:
            raise ValueError("Expecting value: line 1 column 1")
        except ValueError as exc:
            raise BackendError("remote: the server's answer is not JSON") from exc
    except BackendError as err:
        api = from_plait_error(err)
    assert api.status == 500 and api.code != "context_length_exceeded"
    assert from_plait_error(ModelOutputError("not JSON")).status == 422
