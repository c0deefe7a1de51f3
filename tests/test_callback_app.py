"""The callback endpoint (``callback_app``) served by a real WSGI server on loopback: mParticle's (the
sandbox's) real callbacks are accepted with 202 and handed to the host; forgeries get 401."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests

from connector_mparticle.callbacks import CallbackStatus, CallbackVerifier, callback_app
from connector_mparticle.sandbox import Sandbox
from connector_mparticle.sandbox.pki import PROCESSOR_DOMAIN, CertificateAuthority, sign_body
from connector_mparticle.sandbox.server import Serving
from tests.support.hosting import mparticle, request


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        return


@contextmanager
def serving(app: Callable[..., Any]) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    serving = Serving(server, "callback-app")
    try:
        yield f"http://127.0.0.1:{server.server_port}/mparticle/callbacks"
    finally:
        serving.stop()


@pytest.fixture
def endpoint(sandbox: Sandbox) -> Iterator[tuple[str, list[CallbackStatus]]]:
    received: list[CallbackStatus] = []
    verifier = CallbackVerifier.for_config(sandbox.connector_config())
    with serving(callback_app(verifier, received.append)) as url:
        yield url, received


STATUS = {"controller_id": "12345", "subject_request_id": "3f1e8c8e-2b53-4b1e-9d9b-8d0a5c1e2f00",
          "request_status": "completed", "expected_completion_time": None, "results_url": None, "extensions": None}


def signed(body: bytes, key: Any) -> dict[str, str]:
    return {"X-OpenDSR-Processor-Domain": PROCESSOR_DOMAIN, "X-OpenDSR-Signature": sign_body(key, body),
            "Content-Type": "application/json"}


def test_real_sandbox_callbacks_are_accepted_and_handed_to_the_host(
        sandbox: Sandbox, endpoint: tuple[str, list[CallbackStatus]]) -> None:
    url, received = endpoint
    sandbox.set_durations(erasure=(0.2, 0.2))
    pending = mparticle(sandbox, callback_urls=[url]).handle(request("deletion"))
    subject_request_id = pending.summary["subject_request_id"]
    deadline = time.time() + 10
    while time.time() < deadline and "completed" not in [s.request_status for s in received]:
        sandbox.dsrs()  # lets the sandbox move the request along (and send its callbacks)
        time.sleep(0.05)
    assert [s.request_status for s in received] == ["pending", "in_progress", "completed"]
    assert all(s.subject_request_id == subject_request_id and s.applies_to(pending.state) for s in received)
    deliveries = [d for d in sandbox.callbacks() if d["url"] == url]
    assert [d["http_status"] for d in deliveries] == [202, 202, 202]


@pytest.mark.parametrize(("forge", "status", "reason"), [
    (lambda sb, body: signed(body, CertificateAuthority("forger").issued.key), 401, "bad_signature"),
    (lambda sb, body: {"X-OpenDSR-Processor-Domain": PROCESSOR_DOMAIN}, 401, "missing_headers"),
    (lambda sb, body: {**signed(body, sb.pki.processor.key), "X-OpenDSR-Processor-Domain": "evil.example"}, 401,
     "domain_not_allowed"),
], ids=["forged", "unsigned", "other-domain"])
def test_forged_callbacks_are_refused_with_401_and_never_reach_the_host(
        sandbox: Sandbox, endpoint: tuple[str, list[CallbackStatus]], forge: Any, status: int, reason: str) -> None:
    url, received = endpoint
    body = json.dumps(STATUS).encode()
    answer = requests.post(url, data=body, headers=forge(sandbox, body), timeout=10)
    assert answer.status_code == status and answer.json() == {"error": reason}
    assert received == []


def test_a_genuine_signature_on_an_altered_body_is_refused(sandbox: Sandbox,
                                                           endpoint: tuple[str, list[CallbackStatus]]) -> None:
    url, received = endpoint
    body = json.dumps(STATUS).encode()
    headers = signed(body, sandbox.pki.processor.key)
    answer = requests.post(url, data=body.replace(b"completed", b"cancelled"), headers=headers, timeout=10)
    assert answer.status_code == 401 and received == []


def test_other_methods_bodies_and_sizes(sandbox: Sandbox, endpoint: tuple[str, list[CallbackStatus]]) -> None:
    url, received = endpoint
    get = requests.get(url, timeout=10)
    assert get.status_code == 405 and get.headers["Allow"] == "POST"
    not_status = b'{"hello": "world"}'
    assert requests.post(url, data=not_status, headers=signed(not_status, sandbox.pki.processor.key),
                         timeout=10).status_code == 400
    huge = b"{" + b" " * 100_000 + b"}"
    assert requests.post(url, data=huge, headers=signed(huge, sandbox.pki.processor.key), timeout=10).status_code == 413
    assert received == []


def test_a_failing_host_handler_answers_500_so_mparticle_retries(sandbox: Sandbox) -> None:
    def broken(status: CallbackStatus) -> None:
        raise RuntimeError("database down")

    verifier = CallbackVerifier.for_config(sandbox.connector_config())
    with serving(callback_app(verifier, broken)) as url:
        body = json.dumps(STATUS).encode()
        answer = requests.post(url, data=body, headers=signed(body, sandbox.pki.processor.key), timeout=10)
    assert answer.status_code == 500 and answer.json() == {"error": "handler_failed"}
