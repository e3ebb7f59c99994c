"""The wait token callback route refuses bad requests with 401/400, never a 500.

A signature with non-ASCII characters is a wrong signature (401). With a valid signature, a
body Shipyard cannot store (NaN/Infinity, nested deeper than the limit, a lone surrogate, not
JSON) is 400 with ``{"error": …}`` naming the problem, and the token stays WAITING. Driven
through the real app over httpx's ASGI transport, on both backends.
"""

from __future__ import annotations

import httpx
import pytest

from shipyard import wait
from shipyard.engine.engine import Engine
from shipyard.jsonutil import MAX_JSON_DEPTH
from shipyard.server.app import create_app


async def _token_path(engine: Engine) -> tuple[str, str]:
    token = await wait.create_token()
    return token.id, "/" + token.url.split("://", 1)[1].split("/", 1)[1]


def _client(engine: Engine) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(engine), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://localhost")


@pytest.mark.parametrize("signature", ["é" * 64, "%C3%A9" * 32, "%ED%A0%80", "ü", "0" * 64])
async def test_a_non_ascii_or_wrong_signature_is_401(engine: Engine, signature: str) -> None:
    token_id, path = await _token_path(engine)
    base = path.rsplit("/", 1)[0]
    async with _client(engine) as client:
        response = await client.post(f"{base}/{signature}", json={"hacked": True})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "Invalid callback signature for this wait token."
    assert (await wait.retrieve_token(token_id)).status == "WAITING"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"amount": NaN}', "is nan, which JSON cannot represent"),
        (b"[Infinity]", "is inf, which JSON cannot represent"),
        (b'{"name": "\\ud800"}', "lone surrogate"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nests deeper than 64"),
        (b'{"a":' + b"[" * 100 + b"]" * 100 + b"}", "nests deeper than 64"),
        (b"[" * 980 + b"]" * 980, "nests deeper than 64"),
        (b"[" * 100_000, "nests deeper than 64"),
        (b"{not json", "The request body is not valid JSON"),
        (b"\xff\xfe\x00", "The request body is not valid JSON"),
    ],
)
async def test_a_body_that_cannot_be_stored_is_400(
    engine: Engine, body: bytes, problem: str
) -> None:
    token_id, path = await _token_path(engine)
    async with _client(engine) as client:
        response = await client.post(path, content=body)
    assert response.status_code == 400, response.text
    assert problem in response.json()["error"]
    assert (await wait.retrieve_token(token_id)).status == "WAITING"


async def test_the_deepest_allowed_body_completes_the_token(engine: Engine) -> None:
    token_id, path = await _token_path(engine)
    body = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    async with _client(engine) as client:
        response = await client.post(path, content=body)
    assert response.status_code == 200 and response.json() == {"success": True}
    info = await wait.retrieve_token(token_id)
    assert info.status == "COMPLETED" and isinstance(info.output, list)
