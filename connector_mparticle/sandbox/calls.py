"""What a sandbox route handler receives and returns."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from connector_mparticle.sandbox.context import SandboxContext

__all__ = ["BadJson", "Call", "Handler", "Reply", "Route"]


class BadJson(ValueError):
    """The request body is not the JSON the route needs."""


@dataclass
class Call:
    """One HTTP request as a route handler sees it."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    client: str = "anonymous"  #: label of the credential that authenticated the call
    query_string: str = ""  #: the query as sent (IDSync signatures may cover it)

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadJson(f"the body is not valid JSON: {exc}") from None

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    """A response: JSON (``body``), raw bytes, or a file streamed from disk."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    file: Path | None = None
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body).encode("utf-8")


Handler = Callable[[SandboxContext, Call], Reply]


@dataclass(frozen=True)
class Route:
    """``method`` + ``pattern`` (a regex over the path) served by ``handler`` for ``api``.

    ``auth`` is the credential the route needs: ``workspace`` (DSR), ``input`` (Events, Identity) or None.
    """

    method: str
    pattern: str
    api: str
    handler: Handler
    auth: str | None = None
