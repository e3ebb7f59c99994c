"""The remote client's pure parts: SDK arguments to the API's JSON, the API's JSON back to the
engine's objects (a round trip through the server's own wire models), and error answers back
to Shipyard's exceptions."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import httpx
import pytest
from fresh_process import fresh_python
from wire_examples import NOW, SDK_TRIGGER_BODY, failed_run, make_run, queue_info, token_info

from shipyard.client import convert
from shipyard.client.options import duration_value, time_value, trigger_body
from shipyard.client.transport import error_from_response, public_url
from shipyard.engine.idempotency import normalize
from shipyard.errors import (
    AuthenticationError,
    ForbiddenError,
    InvalidDurationError,
    PayloadTooLargeError,
    RateLimitedError,
    RemoteEngineError,
    RunNotFoundError,
    SerializationError,
    UnknownQueueError,
    ValidationError,
)
from shipyard.idempotency import IdempotencyKey, outside_run_key
from shipyard.jsonutil import loads
from shipyard.schemas import (
    QueueItem,
    RetrieveRunResponse,
    RetrieveWaitpointTokenResponse,
    TriggerTaskRequest,
    WaitpointTokenItem,
)


def test_a_trigger_body_is_what_the_server_parses_back_into_the_same_options() -> None:
    options: dict[str, Any] = {
        "tags": "x",
        "ttl": 600,
        "delay": datetime.timedelta(minutes=5),
        "idempotency_key": "order-1",
        "idempotency_key_ttl": "1d",
        "queue": {"name": "emails"},
        "concurrency_key": "7",
        "max_attempts": 2,
        "max_duration": 30,
        "metadata": {"k": 1},
        "machine": "small-2x",
        "priority": 10,
        "debounce": {"key": "d", "delay": 5, "mode": "trailing"},
    }
    body = trigger_body({"when": NOW}, options)
    request = TriggerTaskRequest.model_validate(body)
    assert request.decoded_payload() == {"when": "2025-01-02T03:04:05.678901+00:00"}
    assert request.trigger_options() == {
        "tags": ["x"],
        "ttl": "10m",
        "delay": "5m",
        # Hashed as the engine hashes a raw key outside a run, and as Trigger.dev's SDK does.
        "idempotency_key": SDK_TRIGGER_BODY["options"]["idempotencyKey"],
        "idempotency_key_ttl": "1d",
        "queue": "emails",
        "concurrency_key": "7",
        "max_attempts": 2,
        "max_duration": 30,
        "metadata": {"k": 1},
        "machine": "small-2x",
        "priority": 10,
        "debounce": {"key": "d", "delay": "5s", "mode": "trailing"},
    }


@pytest.mark.parametrize("key", ["order-1", ["order", "1"], IdempotencyKey("a" * 64)])
def test_idempotency_keys_are_hashed_exactly_as_the_engine_stores_them(key: Any) -> None:
    assert str(outside_run_key(key)) == normalize(key)


def test_bad_trigger_arguments_fail_before_any_request() -> None:
    with pytest.raises(ValidationError, match="Unknown trigger option 'ttl_ms'"):
        trigger_body(None, {"ttl_ms": 5})
    with pytest.raises(ValidationError, match="connection="):
        trigger_body(None, {"connection": object()})
    with pytest.raises(SerializationError):
        trigger_body({"x": object()}, {})
    with pytest.raises(InvalidDurationError):
        duration_value(-1, "ttl")


def test_durations_and_times_become_the_apis_strings() -> None:
    assert duration_value(90, "ttl") == "1m30s"
    assert duration_value(0.2, "ttl") == "1s"  # no milliseconds on the wire: rounded up
    assert duration_value(0, "ttl") == "0s"
    assert duration_value("2h", "ttl") == "2h"
    assert time_value(NOW, "delay") == "2025-01-02T03:04:05.678Z"
    assert time_value(datetime.timedelta(hours=1), "delay") == "1h"
    moment = datetime.datetime.fromisoformat(time_value(1.5, "delay").replace("Z", "+00:00"))
    assert moment > datetime.datetime.now(datetime.UTC)


@pytest.mark.parametrize("run", [make_run(), failed_run()], ids=["completed", "failed"])
def test_a_run_survives_the_wire(run: Any) -> None:
    parent = make_run(id="run_parent")
    wire = RetrieveRunResponse.from_run(run, parent=parent).to_wire()
    back = convert.run_from_retrieve(RetrieveRunResponse.model_validate(wire))
    kept = {
        f.name
        for f in dataclasses.fields(run)
        if f.name not in {"max_attempts", "queue", "priority", "parent_id", "root_id", "attempts"}
    }
    assert {name: getattr(back, name) for name in kept} == {
        name: getattr(run, name) for name in kept
    } | {
        # Millisecond dates on the wire.
        name: getattr(run, name).replace(microsecond=678_000)
        for name in ("created_at", "updated_at", "started_at", "finished_at")
    }
    assert back.parent_id == "run_parent"
    ms = NOW.replace(microsecond=678_000)
    assert back.attempts == tuple(
        dataclasses.replace(a, started_at=ms, finished_at=ms) for a in run.attempts
    )


def test_a_root_with_children_is_its_own_root_on_the_wire_but_not_in_the_client() -> None:
    root = make_run(id="run_root")
    child = dataclasses.replace(make_run(id="run_child"), parent_id="run_root", root_id="run_root")
    wire = RetrieveRunResponse.from_run(root, root=root, children=[child]).to_wire()
    assert wire["relatedRuns"]["root"]["id"] == "run_root"
    assert [c["id"] for c in wire["relatedRuns"]["children"]] == ["run_child"]
    back = convert.run_from_retrieve(RetrieveRunResponse.model_validate(wire))
    assert back.root_id is None and back.parent_id is None  # as the engine has it for a root
    wire = RetrieveRunResponse.from_run(child, root=root, parent=root).to_wire()
    back = convert.run_from_retrieve(RetrieveRunResponse.model_validate(wire))
    assert back.root_id == back.parent_id == "run_root"


def test_tokens_and_queues_survive_the_wire() -> None:
    for status in ("COMPLETED", "WAITING", "TIMED_OUT"):
        info = token_info(status)
        wire = RetrieveWaitpointTokenResponse.from_info(info).to_wire()
        back = convert.token_info(RetrieveWaitpointTokenResponse.model_validate(wire))
        assert dataclasses.replace(back, error=None) == dataclasses.replace(info, error=None)
        assert (back.error is None) == (info.error is None)
        listed = convert.token_info(
            WaitpointTokenItem.model_validate(WaitpointTokenItem.from_info(info).to_wire())
        )
        assert listed.output is None and listed.status == status
    for queue in (
        queue_info(),
        queue_info("emails", limit_override=2, effective_limit=2),
        queue_info("bulk", concurrency_limit=None, effective_limit=100, paused=True),
    ):
        wire = QueueItem.from_info(queue).to_wire()
        assert convert.queue_info(QueueItem.model_validate(wire), 100) == queue


def _answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "https://user:pw@engine.example.com/api/v3/runs/run_1")
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_error_answers_become_the_engines_exceptions_with_the_servers_message() -> None:
    cases = [
        (
            _answer(404, {"error": "Run run_1 not found.", "code": "RUN_NOT_FOUND"}),
            RunNotFoundError,
        ),
        (_answer(404, {"error": "Queue q not found."}), UnknownQueueError),
        (
            _answer(400, {"error": "bad ttl", "code": "INVALID_DURATION", "param": "options.ttl"}),
            InvalidDurationError,
        ),
        (_answer(400, {"error": "Invalid request: x"}), ValidationError),
        (_answer(413, {"error": "too big"}), PayloadTooLargeError),
        (_answer(403, {"error": "out of scope"}), ForbiddenError),
        (_answer(401, {"error": "Invalid API key."}), AuthenticationError),
        (
            _answer(429, {"error": "slow down", "code": "RATE_LIMITED"}, **{"retry-after": "2"}),
            RateLimitedError,
        ),
        (_answer(502, None), RemoteEngineError),
    ]
    for response, expected in cases:
        error = error_from_response(response, not_found=UnknownQueueError)
        assert type(error) is expected, (response.status_code, type(error))
        assert error.context["status"] == response.status_code
    invalid = error_from_response(cases[2][0])
    assert invalid.message == "bad ttl" and invalid.context["param"] == "options.ttl"
    limited = error_from_response(cases[7][0])
    assert isinstance(limited, RateLimitedError) and limited.retry_after_ms == 2000
    refused = error_from_response(cases[6][0])
    assert (
        refused.message.startswith("Invalid API key") and "SHIPYARD_SECRET_KEY" in refused.message
    )
    failed = error_from_response(cases[8][0])
    assert "pw" not in failed.message and "engine.example.com" in failed.message


def test_urls_in_messages_lose_their_password() -> None:
    assert public_url("https://me:secret@engine.example.com:8443/x?y=1") == (
        "https://engine.example.com:8443/x"
    )


def test_json_text_round_trip_of_token_output() -> None:
    info = token_info()
    wire = RetrieveWaitpointTokenResponse.from_info(info)
    assert loads(wire.output) == info.output


def test_importing_shipyard_leaves_the_client_and_httpx_out() -> None:
    """A worker or a CLI command on the local database never pays for httpx and the wire
    models: the SDK imports the remote client when a process first uses it."""
    code = (
        "import sys, shipyard\n"
        "print(sorted(m for m in ('httpx', 'shipyard.client', 'shipyard.schemas') "
        "if m in sys.modules))"
    )
    printed = fresh_python(code)
    assert printed.strip() == "[]", printed


def test_the_cli_builds_no_wire_model_before_it_uses_one() -> None:
    """A pydantic model's validator and serializer take about a millisecond each to build;
    a ``--api-url`` command imports the remote client, and with it some sixty wire models,
    and uses a few, so they are built on first use (``defer_build``), not at every command's
    start. Used, they work as before."""
    code = (
        "import shipyard.cli.main, shipyard.client\n"
        "from shipyard.models.schedules import ScheduledPayload\n"
        "from shipyard.schemas.wire import WireModel\n"
        "from shipyard.schemas.runs import AddTagsRequest\n"
        "def subclasses(c):\n"
        "    for s in c.__subclasses__():\n"
        "        yield s\n"
        "        yield from subclasses(s)\n"
        "models = [*subclasses(WireModel), ScheduledPayload]\n"
        "print(len(models), sorted(m.__name__ for m in models if m.__pydantic_complete__))\n"
        "print(AddTagsRequest.model_validate({'tags': ['a']}).to_wire())\n"
    )
    counted, used = fresh_python(code).splitlines()
    assert int(counted.split()[0]) > 30 and counted.split(" ", 1)[1] == "[]", counted
    assert used == "{'tags': ['a']}", used
