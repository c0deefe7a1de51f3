"""Fixtures for the hostile-server suite: a hostile mParticle in front of the sandbox, a foreign host, the
connector configured to talk to them, and a leak detector that does not trust the connector's own redactor."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from connector_mparticle.sandbox import Durations, Sandbox, SandboxCredentials
from dsr_framework.host import ConnectorHandle, load_host
from tests.adversarial.hostile import Answer, HostileServer, Rule
from tests.support.hosting import request

#: Random, realistic credentials (as mParticle issues them), so a trace of one cannot be an ordinary word.
CREDS = SandboxCredentials(
    workspace_key=f"wk{secrets.token_hex(8)}", workspace_secret=secrets.token_urlsafe(32),
    input_key=f"ik{secrets.token_hex(8)}", input_secret=secrets.token_urlsafe(32),
    client_id=f"ci{secrets.token_hex(8)}", client_secret=secrets.token_urlsafe(40))
#: ``limits``: a workspace with a raised DSR limit (hosting.FAST_THROTTLE says why).
FAST = {"polling": {"min_interval_seconds": 0.1, "max_interval_seconds": 2},
        "throttle": {"max_retry_seconds": 0.5, "max_retry_after_seconds": 0.2, "limits": {"dsr": 40}},
        "timeouts": {"connect": 2, "read": 2, "total_seconds": 8}}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A sandbox with the random credentials above and requests that complete in under a second."""
    fast = {"access": Durations(0.2, 0.3), "erasure": Durations(0.2, 0.3)}
    with Sandbox(credentials=CREDS, durations=fast) as sb:
        yield sb


@pytest.fixture
def hostile(sandbox: Sandbox) -> Iterator[HostileServer]:
    """A hostile mParticle on 127.0.0.1 that forwards to the sandbox unless a test's rule answers."""
    with HostileServer("127.0.0.1", upstream=sandbox.url) as server:
        yield server


@pytest.fixture
def foreign() -> Iterator[HostileServer]:
    """Another host (127.0.0.2) that records whatever reaches it; it must never see a credential."""
    with HostileServer("127.0.0.2") as server:
        yield server


def config_for(server: HostileServer, sandbox: Sandbox, oauth: bool = False, **settings: Any) -> dict[str, Any]:
    """Connector settings pointing every API (and the token endpoint) at ``server``."""
    config: dict[str, Any] = sandbox.connector_config(oauth=oauth)
    config["dsr"]["base_url"] = server.url
    config["inputs"]["events_base_url"] = server.url
    config["inputs"]["identity_base_url"] = server.url
    config["profile"]["base_url"] = server.url
    for auth in (config["dsr"]["auth"], config["inputs"]["auth"], config["profile"]["auth"]):
        if auth["type"] != "basic":
            auth["token_url"] = f"{server.url}/oauth/token"
    for key, value in {**FAST, **settings}.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def handle_for(config: dict[str, Any]) -> ConnectorHandle:
    host = load_host({"connectors": {"mparticle": {"enabled": True, "config": config}}})
    assert host.problems == [], host.problems
    return host.connector("mparticle")


def completed_access(sandbox: Sandbox, hostile: HostileServer, out: Path, results: Rule,
                     **settings: Any) -> tuple[ConnectorHandle, Any, Any]:
    """An access request for Jane that mParticle completed, its results link answered by ``results`` through the
    hostile server, before the call that downloads them: the handle (``settings`` applied), the request, its
    state."""
    sandbox.seed_profile({"email": "jane@example.com"})
    handle = handle_for(config_for(hostile, sandbox, **settings))
    req = request("access", output_dir=str(out))
    first = handle.handle(req)
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    hostile.on("GET", r"^/dsr-results/", results)
    return handle, req, first.state


def zip_answer(content: bytes) -> Rule:
    """A rule answering with ``content`` as a results zip."""
    return lambda seen, forward: Answer(200, {"Content-Type": "application/zip"}, content)


def secret_traces(key: str, secret: str) -> list[str]:
    """Every text that would reveal ``secret``: itself, any 8 characters of it, its URL and JSON forms, and
    pieces of the Basic header that carries it with ``key`` (written here, independently of the redactor)."""
    traces = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    traces |= {secret[i:i + 8] for i in range(len(secret) - 7)}
    header = base64.b64encode(f"{key}:{secret}".encode()).decode()
    start = (len(key) + 1) * 4 // 3 + 2  # past the key: only the secret's own characters
    traces |= {header[i:i + 12] for i in range(start, len(header) - 12)}
    return sorted(t for t in traces if len(t) >= 8)


SECRET_PAIRS = [(CREDS.workspace_key, CREDS.workspace_secret), (CREDS.input_key, CREDS.input_secret),
                (CREDS.client_id, CREDS.client_secret)]


def leaks(text: str, pairs: list[tuple[str, str]] = SECRET_PAIRS) -> list[str]:
    """The traces of any secret in ``text``, ignoring case (shown shortened, never whole)."""
    folded = text.lower()
    return sorted({f"{t[:3]}…" for key, secret in pairs for t in secret_traces(key, secret) if t.lower() in folded})


def everything_that_left(result: Any, caplog: pytest.LogCaptureFixture, folder: Path | None = None) -> str:
    """The result, every log record (formatted, with tracebacks) and every file in ``folder``, as one text."""
    parts = [json.dumps(result.to_dict())]
    parts += [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    if folder is not None and folder.exists():
        parts += [p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()]
    return "\n".join(parts)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG (third-party HTTP and OAuth libraries included)."""
    with caplog.at_level(logging.DEBUG):
        yield caplog
