"""Shipyard's wire bodies against the official client's own schemas.

``tests/fixtures/trigger-sdk/schemas/*.json`` are the zod schemas of the pinned
``@trigger.dev/core`` exported to JSON Schema (``export-schemas.mjs``). Every response body the
models produce must validate against the schema the official client parses it with; every
request body they produce must be one the official client could have sent; and every field name
must be spelled as the official schema spells it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pydantic
import pytest
from jsonschema import Draft202012Validator
from wire_examples import (
    NOW,
    SDK_TRIGGER_BODY,
    SDK_TRIGGER_EMPTY_BODY,
    SDK_TRIGGER_STRING_BODY,
    failed_run,
    make_run,
    queue_info,
    token_info,
    waiting_run,
)

from shipyard.schemas import (
    RUN_STATUSES,
    AddTagsRequest,
    AddTagsResponse,
    BatchProcessing,
    BatchProcessingError,
    BatchRun,
    BatchStreamItem,
    BatchTriggerRequest,
    BatchTriggerResponse,
    CanceledRunResponse,
    CompleteWaitpointTokenRequest,
    CompleteWaitpointTokenResponse,
    CreateBatchRequest,
    CreateBatchResponse,
    CreateWaitpointTokenRequest,
    CreateWaitpointTokenResponse,
    CursorPagination,
    ListQueuesResponse,
    ListRunItem,
    ListRunsResponse,
    ListWaitpointTokensResponse,
    OffsetPagination,
    QueueItem,
    ReplayRunRequest,
    ReplayRunResponse,
    RescheduleRunRequest,
    ResetIdempotencyKeyRequest,
    ResetIdempotencyKeyResponse,
    RetrieveBatchResponse,
    RetrieveRunResponse,
    RetrieveWaitpointTokenResponse,
    RunEnvironment,
    StreamBatchItemsResponse,
    TriggerTaskOptions,
    TriggerTaskRequest,
    TriggerTaskResponse,
    UpdateMetadataRequest,
    UpdateMetadataResponse,
    WaitpointTokenItem,
    WireModel,
)
from shipyard.statuses import RunStatus

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "trigger-sdk"
ENV = RunEnvironment(id="env_dev", name="development")


@cache
def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((FIXTURE / "schemas" / f"{name}.json").read_text())
    return schema


def _assert_valid(name: str, body: Any) -> None:
    validator = Draft202012Validator(_schema(name))
    problems = [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(body)
    ]
    assert problems == [], f"{name}: {problems}"


def _responses() -> list[tuple[str, WireModel]]:
    runs = [make_run(), failed_run(), waiting_run()]
    runs += [make_run(id=f"run_{s.lower()}", status=RunStatus(s)) for s in RUN_STATUSES]
    retrieve: list[tuple[str, WireModel]] = [
        ("retrieve-run-response", RetrieveRunResponse.from_run(run)) for run in runs
    ]
    retrieve.append(
        (
            "retrieve-run-response",
            RetrieveRunResponse.from_run(
                failed_run(), root=make_run(), parent=make_run(), children=[waiting_run()]
            ),
        )
    )
    return [
        *retrieve,
        ("trigger-task-response", TriggerTaskResponse(id="run_1")),
        ("trigger-task-response", TriggerTaskResponse(id="run_1", is_cached=True)),
        (
            "batch-trigger-response",
            BatchTriggerResponse(
                id="batch_1",
                runs=[
                    BatchRun(id="run_1", task_identifier="a"),
                    BatchRun(id="run_2", task_identifier="b", is_cached=True, idempotency_key="k"),
                ],
            ),
        ),
        ("create-batch-response", CreateBatchResponse(id="batch_1", run_count=2, is_cached=False)),
        (
            "stream-batch-items-response",
            StreamBatchItemsResponse(
                id="batch_1", items_accepted=2, items_deduplicated=0, sealed=True
            ),
        ),
        (
            "retrieve-batch-response",
            RetrieveBatchResponse(
                id="batch_1",
                status="PARTIAL_FAILED",
                created_at=NOW,
                updated_at=NOW,
                run_count=2,
                runs=["run_1"],
                processing=BatchProcessing(
                    completed_at=NOW,
                    errors=[BatchProcessingError(index=1, task_identifier="b", error="no task")],
                ),
            ),
        ),
        (
            "retrieve-batch-response",
            RetrieveBatchResponse(
                id="batch_2", status="PENDING", created_at=NOW, updated_at=NOW, run_count=0, runs=[]
            ),
        ),
        (
            "list-runs-response",
            ListRunsResponse(
                data=[ListRunItem.from_run(run, ENV) for run in runs],
                pagination=CursorPagination(next="run_9"),
            ),
        ),
        ("list-runs-response", ListRunsResponse(data=[])),
        ("canceled-run-response", CanceledRunResponse(id="run_1")),
        ("replay-run-response", ReplayRunResponse(id="run_2")),
        ("add-tags-response", AddTagsResponse(message="Successfully set 2 new tags.")),
        ("update-metadata-response", UpdateMetadataResponse(metadata={"a": [1, {"b": None}]})),
        ("reset-idempotency-key-response", ResetIdempotencyKeyResponse(id="k" * 64)),
        (
            "create-waitpoint-token-response",
            CreateWaitpointTokenResponse(id="waitpoint_1", is_cached=False, url="http://x/cb"),
        ),
        *[
            (
                "retrieve-waitpoint-token-response",
                RetrieveWaitpointTokenResponse.from_info(token_info(s)),
            )
            for s in ("WAITING", "COMPLETED", "TIMED_OUT")
        ],
        (
            "list-waitpoint-tokens-response",
            ListWaitpointTokensResponse(
                data=[WaitpointTokenItem.from_info(token_info(s)) for s in ("WAITING", "COMPLETED")]
            ),
        ),
        ("complete-waitpoint-token-response", CompleteWaitpointTokenResponse()),
        ("queue-item", QueueItem.from_info(queue_info())),
        ("queue-item", QueueItem.from_info(queue_info("emails", concurrency_limit=None))),
        ("queue-item", QueueItem.from_info(queue_info(limit_override=0, paused=True))),
        (
            "list-queues-response",
            ListQueuesResponse(
                data=[QueueItem.from_info(queue_info())],
                pagination=OffsetPagination(current_page=1, total_pages=1, count=1),
            ),
        ),
    ]


RESPONSES = _responses()


@pytest.mark.parametrize(
    ("schema", "model"), RESPONSES, ids=[f"{s}-{i}" for i, (s, _) in enumerate(RESPONSES)]
)
def test_responses_satisfy_the_official_client(schema: str, model: WireModel) -> None:
    _assert_valid(schema, model.to_wire())


REQUESTS: list[tuple[str, WireModel]] = [
    ("trigger-task-request", TriggerTaskRequest.model_validate(SDK_TRIGGER_BODY)),
    ("trigger-task-request", TriggerTaskRequest.model_validate(SDK_TRIGGER_STRING_BODY)),
    (
        "trigger-task-request",
        TriggerTaskRequest.model_validate(
            {
                "payload": {"a": 1},
                "options": {"queue": "q", "tags": "t", "ttl": 60, "idempotencyKeyTTL": "1h"},
            }
        ),
    ),
    (
        "batch-trigger-request",
        BatchTriggerRequest.model_validate(
            {"items": [{"task": "a", "payload": 1, "options": {"tags": ["x"], "machine": "micro"}}]}
        ),
    ),
    ("create-batch-request", CreateBatchRequest(run_count=2, task_identifiers=["a"])),
    ("batch-stream-item", BatchStreamItem(index=0, task="a", payload='{"json":1}')),
    (
        "replay-run-request",
        ReplayRunRequest.model_validate({"tags": ["a"], "idempotencyKeyTTL": "1h"}),
    ),
    ("reschedule-run-request", RescheduleRunRequest(delay="10m")),
    ("add-tags-request", AddTagsRequest.model_validate({"tags": "one"})),
    (
        "update-metadata-request",
        UpdateMetadataRequest.model_validate(
            {"operations": [{"type": "increment", "key": "n", "value": 1}], "metadata": {"a": 1}}
        ),
    ),
    ("reset-idempotency-key-request", ResetIdempotencyKeyRequest(task_identifier="hello")),
    (
        "create-waitpoint-token-request",
        CreateWaitpointTokenRequest.model_validate(
            {"timeout": "1h", "tags": ["t"], "idempotencyKey": "k", "idempotencyKeyTTL": "1d"}
        ),
    ),
    ("complete-waitpoint-token-request", CompleteWaitpointTokenRequest(data={"ok": True})),
]


@pytest.mark.parametrize(
    ("schema", "model"), REQUESTS, ids=[f"{s}-{i}" for i, (s, _) in enumerate(REQUESTS)]
)
def test_request_bodies_are_ones_the_official_client_sends(schema: str, model: WireModel) -> None:
    _assert_valid(schema, model.to_wire())


def test_captured_sdk_bodies_satisfy_the_exported_schema() -> None:
    for body in (SDK_TRIGGER_BODY, SDK_TRIGGER_STRING_BODY, SDK_TRIGGER_EMPTY_BODY):
        _assert_valid("trigger-task-request", body)


# Shipyard's additions to the official shapes (the official client drops unknown keys).
EXTENSIONS = {RetrieveRunResponse: {"attempts"}}

FIELD_NAME_PAIRS: list[tuple[type[WireModel], str, tuple[str, ...]]] = [
    (TriggerTaskRequest, "trigger-task-request", ()),
    (TriggerTaskOptions, "trigger-task-request", ("options",)),
    (BatchTriggerRequest, "batch-trigger-request", ()),
    (BatchTriggerResponse, "batch-trigger-response", ()),
    (RetrieveRunResponse, "retrieve-run-response", ()),
    (ListRunsResponse, "list-runs-response", ()),
    (RetrieveBatchResponse, "retrieve-batch-response", ()),
    (ReplayRunRequest, "replay-run-request", ()),
    (UpdateMetadataRequest, "update-metadata-request", ()),
    (CreateWaitpointTokenRequest, "create-waitpoint-token-request", ()),
    (RetrieveWaitpointTokenResponse, "retrieve-waitpoint-token-response", ()),
    (CreateBatchRequest, "create-batch-request", ()),
    (StreamBatchItemsResponse, "stream-batch-items-response", ()),
]


def _properties(schema: dict[str, Any], path: tuple[str, ...]) -> set[str]:
    for key in path:
        schema = schema["properties"][key]
    if "properties" in schema:
        return set(schema["properties"])
    names: set[str] = set()
    for part in schema.get("allOf", []) + schema.get("oneOf", []) + schema.get("anyOf", []):
        names |= set(part.get("properties", {}))
    return names


@pytest.mark.parametrize(
    ("model", "schema", "path"), FIELD_NAME_PAIRS, ids=[m.__name__ for m, _, _ in FIELD_NAME_PAIRS]
)
def test_field_names_are_spelled_as_the_official_schema(
    model: type[WireModel], schema: str, path: tuple[str, ...]
) -> None:
    ours = {
        field.serialization_alias or field.alias or name
        for name, field in model.model_fields.items()
    }
    official = _properties(_schema(schema), path)
    assert ours - official - EXTENSIONS.get(model, set()) == set()


def test_a_null_date_is_caught_by_the_official_schema() -> None:
    body = RetrieveRunResponse.from_run(make_run()).to_wire()
    body["startedAt"] = None  # the official client would read this as 1 January 1970
    with pytest.raises(AssertionError, match="startedAt"):
        _assert_valid("retrieve-run-response", body)


def test_every_exported_schema_is_a_valid_json_schema() -> None:
    files = sorted((FIXTURE / "schemas").glob("*.json"))
    assert len(files) >= 29
    for path in files:
        Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_exported_schemas_match_the_pinned_sdk() -> None:
    lock = json.loads((FIXTURE / "package-lock.json").read_text())
    packages = lock["packages"]
    version = packages["node_modules/@trigger.dev/sdk"]["version"]
    assert packages["node_modules/@trigger.dev/core"]["version"] == version
    assert (
        json.loads((FIXTURE / "package.json").read_text())["dependencies"]["@trigger.dev/sdk"]
        == version
    )
    assert f"@trigger.dev/core {version}" in _schema("retrieve-run-response")["description"]


def test_models_reject_what_the_official_schema_rejects() -> None:
    with pytest.raises(pydantic.ValidationError):
        RescheduleRunRequest.model_validate({})
    _assert_valid("reschedule-run-request", {"delay": "10m"})
