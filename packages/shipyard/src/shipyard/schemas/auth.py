"""Public access tokens over HTTP: ``POST /api/v1/auth/jwt`` (secret key only) signs a token
for the caller's environment.

Scopes are Trigger.dev's, flattened to strings: ``read:runs`` (every run), ``read:runs:<id>``,
``read:tags:<tag>``, ``read:batch:<id>``, ``read:tasks:<task id>``, ``read:waitpoints:<id>``,
``write:tasks:<task id>`` (trigger the task), ``write:waitpoints:<id>`` (complete the token),
``write:inputStreams:<run id>``. :func:`flatten_scopes` turns the nested form the SDK takes
(``{"read": {"runs": ["run_1"]}}``) into those strings; a token with no scopes grants nothing.

Example::

    body = CreatePublicTokenRequest(claims=PublicTokenClaims(scopes=["read:runs:run_1"]),
                                    expiration_time="15m")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from shipyard.errors import ValidationError
from shipyard.schemas.wire import StrictInt, WireModel

__all__ = [
    "DEFAULT_PUBLIC_TOKEN_EXPIRY",
    "SCOPE_ACTIONS",
    "SCOPE_RESOURCES",
    "CreatePublicTokenRequest",
    "CreatePublicTokenResponse",
    "PublicTokenClaims",
    "check_scope",
    "flatten_scopes",
]

DEFAULT_PUBLIC_TOKEN_EXPIRY = "15m"
"""How long a public access token lasts unless told otherwise (as in Trigger.dev)."""

SCOPE_ACTIONS = ("read", "write")
SCOPE_RESOURCES = ("runs", "tasks", "tags", "batch", "waitpoints", "inputStreams")

Scope = Annotated[str, Field(min_length=1, max_length=512)]


def check_scope(scope: str) -> str:
    """``scope`` if it is ``action:resource`` or ``action:resource:name`` with a known action
    and resource; :class:`ValidationError` naming it otherwise.

    Example::

        >>> check_scope("read:runs:run_1")
        'read:runs:run_1'
    """
    action, _, rest = scope.partition(":")
    resource, _, name = rest.partition(":")
    if action not in SCOPE_ACTIONS or resource not in SCOPE_RESOURCES or (":" in rest and not name):
        raise ValidationError(
            f"Invalid scope {scope!r}: use <{'|'.join(SCOPE_ACTIONS)}>:"
            f"<{'|'.join(SCOPE_RESOURCES)}>[:<id>], e.g. read:runs:run_123.",
            param="claims.scopes",
        )
    return scope


def flatten_scopes(scopes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The flat scope strings of the SDK's nested form: ``True`` grants every one of that
    resource, a string or a list of strings names them.

    Example::

        >>> flatten_scopes({"read": {"runs": ["run_1"], "tags": "t"}, "write": {"tasks": True}})
        ['read:runs:run_1', 'read:tags:t', 'write:tasks']
    """
    flat: list[str] = []
    for action, resources in scopes.items():
        if not isinstance(resources, Mapping):
            raise ValidationError(
                f"scopes[{action!r}] must map resources to ids, e.g. {{'runs': ['run_1']}}.",
                param="scopes",
            )
        for resource, names in resources.items():
            if names is True:
                flat.append(check_scope(f"{action}:{resource}"))
            elif names is False or names is None:
                continue
            elif isinstance(names, str):
                flat.append(check_scope(f"{action}:{resource}:{names}"))
            elif isinstance(names, Sequence):
                flat.extend(check_scope(f"{action}:{resource}:{n}") for n in names)
            else:
                raise ValidationError(
                    f"scopes[{action!r}][{resource!r}] must be True, an id or a list of ids.",
                    param="scopes",
                )
    return flat


class PublicTokenClaims(WireModel):
    """The claims the caller chooses: only ``scopes`` (flat strings)."""

    scopes: list[Scope] = Field(default_factory=list, max_length=1000)


class CreatePublicTokenRequest(WireModel):
    """Body of ``POST /api/v1/auth/jwt`` (Trigger.dev's shape, plus ``oneTimeUse``).

    ``expirationTime`` is a duration (``"15m"``, ``"1h"``; the default is 15 minutes) or an
    epoch time in seconds; ``oneTimeUse`` makes a token the server accepts once (trigger
    tokens made with ``multiple_use=False``).
    """

    claims: PublicTokenClaims | None = None
    expiration_time: str | StrictInt | None = None
    one_time_use: bool = False


class CreatePublicTokenResponse(WireModel):
    """The signed token (a JWT)."""

    token: str
