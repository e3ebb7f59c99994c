"""Public access tokens are signed without PyJWT's per-call key preparation: the tokens must
stay exactly what ``jwt.encode`` makes, and verify."""

from __future__ import annotations

import time

import jwt
import pytest

from shipyard.engine.auth import sign_token, verify_token
from shipyard.errors import AuthenticationError


@pytest.mark.parametrize(
    ("environment", "scopes"),
    [
        ("production", ["read:runs:run_1"]),
        ("dev-é", ["write:waitpoints:waitpoint_01J", "read:batch:batch_x"]),
        ("staging", []),
    ],
)
def test_a_signed_token_is_the_one_pyjwt_makes(environment: str, scopes: list[str]) -> None:
    secret = "sk_dev_" + "k" * 40
    token = sign_token(environment, scopes, 1_800_000_000, 3600, secret)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert token == jwt.encode(claims, secret, algorithm="HS256")
    assert claims == {
        "sub": environment,
        "pub": True,
        "scopes": scopes,
        "iat": 1_800_000_000,
        "exp": 1_800_003_600,
    }


def test_a_single_use_token_verifies_and_carries_its_marks() -> None:
    secret = "sk_dev_" + "s" * 40
    now = int(time.time())
    token = sign_token("production", ["trigger:tasks:a"], now, 60, secret, one_time_use=True)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert token == jwt.encode(claims, secret, algorithm="HS256")
    assert claims["otu"] is True and len(claims["jti"]) >= 16
    verified = verify_token(token, secret, environment="production")
    assert verified.allows("trigger", "tasks", "a")
    with pytest.raises(AuthenticationError):
        verify_token(token, secret + "x", environment="production")
