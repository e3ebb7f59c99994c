"""The hello-world function's contract, over HTTP through the same host ``shipyard dev`` uses."""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shipyard.tooling.apphost import FunctionsHost, load_functions

REPO_ROOT = Path(__file__).resolve().parents[3]
URL = "/functions/v1/hello-world"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    host = FunctionsHost(load_functions(REPO_ROOT))
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:54321") as http:
        yield http


def assert_greeting(body: dict[str, str], name: str) -> None:
    assert body["message"] == f"Hello {name}!"
    assert body["function"] == "hello-world"
    assert body["runtime"].startswith("python-3.")
    stamp = datetime.datetime.fromisoformat(body["timestamp"])
    assert abs((datetime.datetime.now(datetime.UTC) - stamp).total_seconds()) < 60
    assert set(body) == {"message", "timestamp", "function", "runtime"}


async def test_get_with_a_name(client: httpx.AsyncClient) -> None:
    response = await client.get(URL, params={"name": "Claude"})
    assert response.status_code == 200
    assert_greeting(response.json(), "Claude")


async def test_get_without_a_name_greets_the_world(client: httpx.AsyncClient) -> None:
    response = await client.get(URL + "/")
    assert_greeting(response.json(), "World")


async def test_post_with_a_json_name(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json={"name": "Ada"})
    assert response.status_code == 200
    assert_greeting(response.json(), "Ada")


async def test_post_with_an_empty_body_greets_the_world(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, content=b"")
    assert_greeting(response.json(), "World")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Request body must be JSON"),
        (b'["Ada"]', "must be a JSON object"),
        (b'{"name": 42}', '"name" must be a non-empty string'),
        (b'{"name": "   "}', '"name" must be a non-empty string'),
        (b'{"name": "' + b"a" * 201 + b'"}', "at most 200 characters"),
        (b"\xff\xfe", "Request body must be JSON"),
    ],
)
async def test_bad_input_is_400_with_a_message(
    client: httpx.AsyncClient, body: bytes, message: str
) -> None:
    response = await client.post(URL, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert message in response.json()["error"]


async def test_unknown_function_is_404_listing_the_known_ones(client: httpx.AsyncClient) -> None:
    response = await client.get("/functions/v1/nope")
    assert response.status_code == 404
    assert URL in response.json()["functions"]
    assert (await client.get("/other")).status_code == 404


async def test_method_not_allowed(client: httpx.AsyncClient) -> None:
    assert (await client.delete(URL)).status_code == 405


@pytest.mark.parametrize("depth", [5_000, 100_000])
async def test_deeply_nested_json_is_400_not_500(client: httpx.AsyncClient, depth: int) -> None:
    """Regression: a body nested past the parser's recursion limit used to crash with 500."""
    for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        response = await client.post(
            URL, content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text[:200]
        assert "nested too deeply" in response.json()["error"]


async def test_nesting_limit_does_not_depend_on_the_recursion_limit(
    client: httpx.AsyncClient,
) -> None:
    """Regression: the depth check used to be RecursionError, so a host (or another test) that
    raised the recursion limit let a 5,000-deep body through to the "not an object" branch."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        deep = b'{"name": "Ada", "x": ' + b"[" * 65 + b"]" * 65 + b"}"
        response = await client.post(URL, content=deep)
    finally:
        sys.setrecursionlimit(previous)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]


async def test_brackets_inside_strings_do_not_count_as_nesting(client: httpx.AsyncClient) -> None:
    """Only real arrays and objects count: a name full of brackets (and escaped quotes) is fine."""
    name = '[{"' * 60 + '\\"'
    body = json.dumps({"name": name, "ok": [[[1]]]}).encode()
    response = await client.post(URL, content=body)
    assert response.status_code == 200, response.text
    assert response.json()["message"] == f"Hello {name}!"
