"""The HTTP wire models: camelCase JSON, absent fields left out, dates as JavaScript writes
them, validation as Trigger.dev's zod schemas, and conversions from Shipyard's objects."""

from __future__ import annotations

import datetime
from typing import Any

import pydantic
import pytest
from wire_examples import (
    NOW,
    NOW_TEXT,
    SDK_TRIGGER_BODY,
    SDK_TRIGGER_EMPTY_BODY,
    SDK_TRIGGER_STRING_BODY,
    event_record,
    failed_run,
    make_run,
    queue_info,
    token_info,
    waiting_run,
)

from shipyard.errors import ValidationError
from shipyard.metadata_ops import MetadataOp
from shipyard.schemas import (
    RUN_STATUSES,
    BatchTriggerRequest,
    CompleteWaitpointTokenRequest,
    CreateWaitpointTokenRequest,
    ListRunEventsResponse,
    ListRunItem,
    QueueItem,
    ReplayRunRequest,
    RetrieveRunResponse,
    RetrieveWaitpointTokenResponse,
    RunEnvironment,
    TriggerTaskRequest,
    TriggerTaskResponse,
    UpdateMetadataRequest,
    WaitpointTokenItem,
    duration_text,
    format_wire_datetime,
    queue_lookup,
    validation_error_response,
)
from shipyard.statuses import RunStatus


def _errors(model: type[pydantic.BaseModel], body: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(pydantic.ValidationError) as caught:
        model.model_validate(body)
    status, response = validation_error_response(caught.value.errors())
    return status, response.to_wire()


# --- the base: camelCase, omission, dates -------------------------------------------------


def test_output_is_camel_case_and_leaves_out_absent_fields() -> None:
    assert TriggerTaskResponse(id="run_1").to_wire() == {"id": "run_1", "isCached": False}
    body = RetrieveRunResponse.from_run(waiting_run()).to_wire()
    assert "taskIdentifier" in body and "task_identifier" not in body
    for absent in ("finishedAt", "output", "ttl", "idempotencyKey", "error", "metadata"):
        assert absent not in body, absent
    assert None not in body.values()


def test_snake_case_names_are_accepted_in_python() -> None:
    assert TriggerTaskResponse(id="r", is_cached=True).is_cached is True
    assert TriggerTaskResponse.model_validate({"id": "r", "isCached": True}).is_cached is True


def test_nullable_fields_are_sent_as_null() -> None:
    body = QueueItem.from_info(queue_info(concurrency_limit=None)).to_wire()
    assert body["concurrencyLimit"] is None
    assert body["concurrency"]["overriddenAt"] is None


def test_null_inside_payload_and_metadata_is_kept() -> None:
    body = RetrieveRunResponse.from_run(make_run(metadata={"a": None})).to_wire()
    assert body["payload"] == {"x": None}
    assert body["metadata"] == {"a": None}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (NOW, NOW_TEXT),
        (datetime.datetime(2025, 1, 2, 3, 4, 5), "2025-01-02T03:04:05.000Z"),
        (
            datetime.datetime(
                2025, 1, 2, 5, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            "2025-01-02T03:04:05.000Z",
        ),
    ],
)
def test_dates_are_written_as_javascript_iso_strings(value: datetime.datetime, text: str) -> None:
    assert format_wire_datetime(value) == text


def test_dates_are_read_from_epoch_milliseconds_and_iso_text() -> None:
    item = WaitpointTokenItem.model_validate(
        {"id": "w", "url": "u", "status": "WAITING", "createdAt": 1_000, "timeoutAt": NOW_TEXT}
    )
    assert item.to_wire()["createdAt"] == "1970-01-01T00:00:01.000Z"
    assert item.to_wire()["timeoutAt"] == NOW_TEXT


def test_openapi_schemas_keep_every_field() -> None:
    schema = RetrieveRunResponse.model_json_schema(mode="serialization", by_alias=True)
    assert {"taskIdentifier", "isQueued", "relatedRuns", "createdAt"} <= set(schema["properties"])
    assert schema["properties"]["createdAt"]["format"] == "date-time"


# --- trigger ------------------------------------------------------------------------------


def test_the_sdk_trigger_body_parses_into_engine_options() -> None:
    request = TriggerTaskRequest.model_validate(SDK_TRIGGER_BODY)
    assert request.decoded_payload() == {"to": "a@b.c", "when": "2025-01-01"}
    assert request.trigger_options() == {
        "concurrency_key": "7",
        "idempotency_key": "0bafe22156d2698c143b86040446d366ead863ba600d5c924f3d15c786ef4057",
        "ttl": "10m",
        "delay": "5m",
        "metadata": {"k": 1},
        "max_attempts": 2,
        "machine": "small-2x",
        "priority": 10,
        "queue": "emails",
        "tags": ["x"],
        "debounce": {"key": "d", "delay": "5s"},
    }


def test_string_and_empty_sdk_payloads() -> None:
    assert TriggerTaskRequest.model_validate(SDK_TRIGGER_STRING_BODY).decoded_payload() == (
        "just a string"
    )
    empty = TriggerTaskRequest.model_validate(SDK_TRIGGER_EMPTY_BODY)
    assert empty.decoded_payload() is None
    assert empty.trigger_options() == {}


def test_a_plain_json_trigger_body_round_trips() -> None:
    body = {
        "payload": {"n": 1},
        "options": {
            "queue": "emails",
            "tags": "one",
            "ttl": 600,
            "idempotencyKeyTTL": "1h",
            "maxDuration": 30,
            "debounce": {"key": "k", "delay": "5s", "mode": "trailing", "maxDelay": "1m"},
        },
    }
    request = TriggerTaskRequest.model_validate(body)
    assert request.decoded_payload() == {"n": 1}
    assert request.trigger_options()["debounce"] == {
        "key": "k",
        "delay": "5s",
        "mode": "trailing",
        "max_delay": "1m",
    }
    wire = request.to_wire()
    assert wire["options"]["idempotencyKeyTTL"] == "1h"
    assert wire["options"]["queue"] == {"name": "emails"}  # the form Trigger.dev's server takes
    again = TriggerTaskRequest.model_validate(wire)
    assert again.trigger_options() == request.trigger_options()
    assert again.decoded_payload() == request.decoded_payload()


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"maxAttempts": "5"}, "options.maxAttempts"),
        ({"maxAttempts": True}, "options.maxAttempts"),
        ({"ttl": -1}, "options.ttl"),
        ({"ttl": True}, "options.ttl"),
        ({"machine": "huge"}, "options.machine"),
        ({"tags": ["x" * 129]}, "options.tags[0]"),
        ({"idempotencyKey": "k" * 2049}, "options.idempotencyKey"),
        ({"debounce": {"key": "k"}}, "options.debounce.delay"),
        ({"debounce": {"key": "k", "delay": "5s", "mode": "sideways"}}, "options.debounce.mode"),
        ({"queue": 5}, "options.queue"),
    ],
)
def test_bad_trigger_options_are_400_naming_the_field(options: dict[str, Any], param: str) -> None:
    status, body = _errors(TriggerTaskRequest, {"payload": {}, "options": options})
    assert status == 400
    assert body["param"] == param
    assert param in body["error"]


def test_unknown_metadata_type_is_refused() -> None:
    request = TriggerTaskRequest.model_validate(
        {"options": {"metadata": {"a": 1}, "metadataType": "application/super+json"}}
    )
    with pytest.raises(ValidationError, match="metadataType"):
        request.trigger_options()


# --- batches ------------------------------------------------------------------------------


def test_batch_items_become_engine_items_in_order() -> None:
    request = BatchTriggerRequest.model_validate(
        {
            "items": [
                {"task": "a", "payload": {"i": 0}},
                {
                    "task": "b",
                    "payload": '{"json":[1]}',
                    "options": {"payloadType": "application/super+json", "tags": "t"},
                },
            ]
        }
    )
    assert request.engine_items() == [
        {"task": "a", "payload": {"i": 0}, "options": {}},
        {"task": "b", "payload": [1], "options": {"tags": ["t"]}},
    ]


@pytest.mark.parametrize("count", [0, 1001])
def test_a_batch_holds_one_to_a_thousand_items(count: int) -> None:
    status, body = _errors(BatchTriggerRequest, {"items": [{"task": "a"}] * count})
    assert status == 400
    assert body["param"] == "items"


def test_a_bad_batch_payload_names_its_item() -> None:
    request = BatchTriggerRequest.model_validate(
        {
            "items": [
                {"task": "a"},
                {"task": "b", "payload": "{", "options": {"payloadType": "application/json"}},
            ]
        }
    )
    with pytest.raises(ValidationError) as caught:
        request.engine_items()
    assert caught.value.context["param"] == "items[1].payload"


# --- runs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", RUN_STATUSES)
def test_status_flags_match_the_engine(status: str) -> None:
    engine_status = RunStatus(status)
    body = RetrieveRunResponse.from_run(make_run(status=engine_status)).to_wire()
    assert body["status"] == status
    assert body["isQueued"] is engine_status.is_queued
    assert body["isExecuting"] is engine_status.is_executing
    assert body["isWaiting"] is engine_status.is_waiting
    assert body["isCompleted"] is engine_status.is_completed
    assert body["isSuccess"] is engine_status.is_success
    assert body["isFailed"] is engine_status.is_failed
    assert body["isCancelled"] is engine_status.is_cancelled


def test_retrieve_carries_error_attempts_and_related_runs() -> None:
    parent = make_run(id="run_parent")
    body = RetrieveRunResponse.from_run(
        failed_run(), root=parent, parent=parent, children=[waiting_run()]
    ).to_wire()
    assert body["error"] == {"message": "boom", "name": "ValueError", "stackTrace": "Traceback …"}
    assert body["attemptCount"] == 2
    assert [a["number"] for a in body["attempts"]] == [1, 2]
    assert body["attempts"][0]["error"]["message"] == "boom"
    assert body["relatedRuns"]["parent"]["id"] == "run_parent"
    assert body["relatedRuns"]["root"]["id"] == "run_parent"
    assert [c["id"] for c in body["relatedRuns"]["children"]] == ["run_waiting"]
    assert "payload" not in body["relatedRuns"]["parent"]
    assert body["ttl"] == "10m"
    assert body["createdAt"] == NOW_TEXT


def test_a_run_without_relatives_still_has_related_runs() -> None:
    assert RetrieveRunResponse.from_run(make_run()).to_wire()["relatedRuns"] == {}


def test_list_items_carry_their_environment() -> None:
    item = ListRunItem.from_run(make_run(), RunEnvironment(id="env_1", name="development"))
    body = item.to_wire()
    assert body["env"] == {"id": "env_1", "name": "development"}
    assert "depth" not in body and "payload" not in body


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (1_000, "1s"),
        (600_000, "10m"),
        (5_400_000, "1h30m"),
        (694_861_000, "1w1d1h1m1s"),
        (400, "1s"),
    ],
)
def test_duration_text(ms: int, text: str) -> None:
    assert duration_text(ms) == text


# --- metadata -----------------------------------------------------------------------------


def test_metadata_operations_map_onto_shipyard_ops() -> None:
    request = UpdateMetadataRequest.model_validate(
        {
            "metadata": {"a": 1},
            "operations": [
                {"type": "set", "key": "$.progress.pct", "value": 50},
                {"type": "delete", "key": "draft"},
                {"type": "append", "key": "log", "value": "x"},
                {"type": "remove", "key": "log", "value": "y"},
                {"type": "increment", "key": "count", "value": 2},
                {"type": "update", "value": {"b": 2}},
            ],
            "parentOperations": [{"type": "increment", "key": "children", "value": 1.5}],
        }
    )
    assert request.metadata_ops() == [
        MetadataOp("replace", None, {"a": 1}),
        MetadataOp("set", "$.progress.pct", 50),
        MetadataOp("del", "draft"),
        MetadataOp("append", "log", "x"),
        MetadataOp("remove", "log", "y"),
        MetadataOp("increment", "count", 2),
        MetadataOp("replace", None, {"b": 2}),
    ]
    assert request.parent_ops() == [MetadataOp("increment", "children", 1.5)]
    assert request.root_ops() == []


def test_an_unknown_metadata_operation_is_refused() -> None:
    status, body = _errors(UpdateMetadataRequest, {"operations": [{"type": "rename", "key": "a"}]})
    assert status == 400
    assert body["param"].startswith("operations[0]")


# --- tokens -------------------------------------------------------------------------------


def test_token_completion_takes_data() -> None:
    assert CompleteWaitpointTokenRequest.model_validate({"data": {"ok": 1}}).data == {"ok": 1}
    assert CompleteWaitpointTokenRequest.model_validate({}).data is None


@pytest.mark.parametrize("body", [{"output": {"ok": 1}}, {"data": 1, "extra": 2}])
def test_token_completion_with_another_key_is_422_naming_data(body: dict[str, Any]) -> None:
    status, response = _errors(CompleteWaitpointTokenRequest, body)
    assert status == 422
    assert '"data"' in response["error"]
    assert response["code"] == "UNPROCESSABLE_BODY"


def test_token_create_options() -> None:
    request = CreateWaitpointTokenRequest.model_validate(
        {"timeout": "1h", "tags": "t", "idempotencyKey": "k", "idempotencyKeyTTL": "1d"}
    )
    assert request.token_options() == {
        "timeout": "1h",
        "idempotency_key": "k",
        "idempotency_key_ttl": "1d",
        "tags": ["t"],
    }


def test_retrieved_token_output_is_json_text() -> None:
    completed = RetrieveWaitpointTokenResponse.from_info(token_info("COMPLETED")).to_wire()
    assert completed["output"] == '{"approved":true}'
    assert completed["outputType"] == "application/json"
    assert completed["outputIsError"] is False
    assert completed["completedAt"] == "2025-01-02T03:04:05.678Z"
    timed_out = RetrieveWaitpointTokenResponse.from_info(token_info("TIMED_OUT")).to_wire()
    assert timed_out["outputIsError"] is True
    assert '"message":"Token timed out."' in timed_out["output"]
    waiting = RetrieveWaitpointTokenResponse.from_info(token_info("WAITING")).to_wire()
    assert "output" not in waiting and "completedAt" not in waiting


# --- queues -------------------------------------------------------------------------------


def test_task_queues_are_reported_by_task_id() -> None:
    body = QueueItem.from_info(queue_info("task/hello", limit_override=2)).to_wire()
    assert body["name"] == "hello"
    assert body["type"] == "task"
    assert body["id"].startswith("queue_")
    assert body["concurrencyLimit"] == 2
    assert body["concurrency"] == {
        "current": 2,
        "base": 5,
        "override": 2,
        "overriddenAt": None,
        "overriddenBy": None,
    }
    custom = QueueItem.from_info(queue_info("emails")).to_wire()
    assert (custom["name"], custom["type"]) == ("emails", "custom")


def test_queue_lookup_forms() -> None:
    assert queue_lookup("hello", "task").name == "task/hello"
    assert queue_lookup("task/hello", "task").name == "task/hello"
    assert queue_lookup("a%2Fb", "custom").name == "a/b"
    assert queue_lookup("queue_123", None).id == "queue_123"
    with pytest.raises(ValidationError, match="queue type"):
        queue_lookup("x", "global")


# --- events -------------------------------------------------------------------------------


def test_event_pages_carry_a_next_cursor_until_the_end() -> None:
    rows = [event_record(i) for i in (41, 42, 43)]
    page = ListRunEventsResponse.from_records(rows, page_size=2).to_wire()
    assert [e["id"] for e in page["events"]] == [41, 42]
    assert page["pagination"] == {"next": "42"}
    assert page["events"][0]["attributes"] == {"url": "https://example.com"}
    assert page["events"][0]["timestamp"] == "2025-01-02T03:04:05.678Z"
    last = ListRunEventsResponse.from_records(rows[2:], page_size=2).to_wire()
    assert last["pagination"] == {}
    status = ListRunEventsResponse.from_records([event_record(7, "status")], page_size=5)
    assert "level" not in status.to_wire()["events"][0]


def test_a_replay_override_from_the_sdk_decodes() -> None:
    # runs.replay("run_1", {payload: {d: new Date(0)}}) as @trigger.dev/sdk 4.8.3 sends it.
    body = {
        "payload": '{"json":{"d":"1970-01-01T00:00:00.000Z"},"meta":{"values":{"d":["Date"]}}}',
        "payloadType": "application/super+json",
    }
    assert ReplayRunRequest.model_validate(body).decoded_payload() == {
        "d": "1970-01-01T00:00:00.000Z"
    }
    assert ReplayRunRequest.model_validate({}).decoded_payload() is None
