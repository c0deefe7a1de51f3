"""Class 4: every hook call is bounded in wall-clock time, whatever the server does.

The servers here keep each read just inside the read timeout (a byte every 0.9 s against 1 s), never answer,
or ask for retries for ever. Every hook call must end within ``timeouts.total_seconds`` plus a small margin,
and a request already pending must stay pending (with its state), not fail.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.errors import OutOfTimeError
from connector_mparticle.http.auth import TokenSource
from connector_mparticle.http.deadline import bounded
from connector_mparticle.sandbox import Sandbox
from dsr_framework.redact import Redactor
from tests.adversarial.conftest import completed_access, config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer, Seen, drip
from tests.support.hosting import request

TOTAL = 3.0
MARGIN = 1.5
SLOW = {"timeouts": {"connect": 1, "read": 1, "total_seconds": TOTAL},
        "throttle": {"max_retry_seconds": 60, "max_retry_after_seconds": 30}}
#: For the tests that count calls running out of time (each call waits its whole budget): the shortest one.
SHORT = {**SLOW, "timeouts": {"connect": 1, "read": 1, "total_seconds": 1.5}}


def dripping(status: int = 200, body: bytes = b'{"ok": true}' + b" " * 500, *, from_start: bool = False) -> Any:
    def rule(seen: Seen, forward: Any) -> Answer:
        headers = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        return Answer(stream=drip(f"HTTP/1.1 {status} OK".encode(), headers, body, 0.9, from_start=from_start))
    return rule


def silent(seen: Seen, forward: Any) -> Answer:
    def stream(out: Any) -> None:
        time.sleep(30)  # accept, read the request, never answer
    return Answer(stream=stream)


def timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    outcome = call()
    return outcome, time.monotonic() - started


@pytest.mark.parametrize(("pattern", "rule"), [
    (r"^/v3/requests", dripping()),
    (r"^/v3/requests", dripping(from_start=True)),
    (r"^/v3/requests", silent),
    (r"^/v3/requests", lambda seen, forward: Answer.of_json(503, {"error": "busy"}, **{"Retry-After": "1"})),
    (r"^/v3/requests", lambda seen, forward: Answer.of_json(429, {"error": "slow down"}, **{"Retry-After": "25"})),
], ids=["body-drip", "header-drip", "silent", "503-forever", "429-long-retry-after"])
def test_a_first_call_ends_within_its_budget_as_retry_later(sandbox: Sandbox, hostile: HostileServer,
                                                            pattern: str, rule: Any) -> None:
    hostile.on("*", pattern, rule)
    handle = handle_for(config_for(hostile, sandbox, **SLOW))
    result, elapsed = timed(lambda: handle.handle(request("deletion")))
    assert elapsed <= TOTAL + MARGIN, f"the call took {elapsed:.1f}s against a {TOTAL:g}s budget"
    assert result.status == "failed" and result.error is not None and result.error.error_class == "retry_later"


@pytest.mark.parametrize("rule", [dripping(), dripping(from_start=True), silent],
                         ids=["body-drip", "header-drip", "silent"])
def test_a_pending_request_stays_pending_when_a_status_check_is_held(sandbox: Sandbox, hostile: HostileServer,
                                                                     rule: Any) -> None:
    handle = handle_for(config_for(hostile, sandbox, **SLOW))
    first = handle.handle(request("deletion"))
    assert first.status == "pending"
    hostile.on("GET", r"^/v3/requests/", rule)
    result, elapsed = timed(lambda: handle.handle(request("deletion"), first.state))
    assert elapsed <= TOTAL + MARGIN, f"the call took {elapsed:.1f}s against a {TOTAL:g}s budget"
    assert result.status == "pending" and result.state, result.message
    assert "ran out of time" in result.message or "could not be reached" in result.message


def completed_access_with_a_dripping_download(sandbox: Sandbox, hostile: HostileServer, tmp_path: Path,
                                              settings: dict[str, Any] = SLOW) -> tuple[Any, Any, Any]:
    """An access request mParticle completed, whose results link drips (the handle, the request, its state)."""
    return completed_access(sandbox, hostile, tmp_path, dripping(body=b"PK" + b"\0" * 4000), **settings)


def test_a_dripping_results_download_ends_within_the_budget_and_leaves_nothing(sandbox: Sandbox,
                                                                                hostile: HostileServer,
                                                                                tmp_path: Path) -> None:
    handle, req, state = completed_access_with_a_dripping_download(sandbox, hostile, tmp_path)
    result, elapsed = timed(lambda: handle.handle(req, state))
    assert elapsed <= TOTAL + MARGIN
    assert result.status == "pending" and list(tmp_path.iterdir()) == []


def test_a_step_that_runs_out_of_time_twice_in_a_row_asks_a_person_instead_of_being_called_for_ever(
        sandbox: Sandbox, hostile: HostileServer, tmp_path: Path) -> None:
    """The first time a step runs out of time, the call had spent part of its budget on earlier steps: the next
    call starts with it. Running out again, it would on every call (an export too large or too slow for the
    budget): the request stays pending with its state and asks a person to raise the budget; after the fix it
    carries on."""
    handle, req, state = completed_access_with_a_dripping_download(sandbox, hostile, tmp_path, SHORT)
    once = handle.handle(req, state)
    assert once.status == "pending" and once.action_required is None and "ran out of time" in once.message
    twice = handle.handle(req, once.state)
    assert twice.status == "pending" and twice.state and twice.action_required is not None, twice.message
    assert "2 calls in a row" in twice.action_required.message
    assert "timeouts.total_seconds: 1.5 s" in twice.action_required.message
    assert "budget should be raised" in twice.action_required.message
    hostile.clear()
    done = handle.handle(req, twice.state)
    assert done.status == "completed" and done.files, done.message


def test_other_trouble_between_two_calls_that_ran_out_of_time_does_not_start_the_count_again(
        sandbox: Sandbox, hostile: HostileServer, tmp_path: Path) -> None:
    """A download too slow for any budget on one call, a 503 to the status check on the next: the download never
    went through, so the next time it runs out of time a person is asked."""
    sandbox.seed_profile({"email": "jane@example.com"})
    handle = handle_for(config_for(hostile, sandbox, **SHORT))
    req = request("access", output_dir=str(tmp_path))
    state = handle.handle(req).state
    sandbox.force_status(sandbox.dsrs()[0]["subject_request_id"], "completed")
    outcomes = []
    for call in range(4):
        hostile.clear()
        if call % 2 == 0:
            hostile.on("GET", r"^/dsr-results/", dripping(body=b"PK" + b"\0" * 4000))
        else:
            hostile.on("GET", r"^/v3/requests/", lambda seen, forward: Answer.of_json(503, {"error": "busy"}))
        result = handle.handle(req, state)
        assert result.status == "pending" and result.state, result.message
        outcomes.append(result.action_required is not None)
        state = result.state
    assert outcomes[:3] == [False, False, True], outcomes  # the 503 after it is passing trouble again


def test_a_part_of_a_split_erasure_not_sent_yet_counts_in_its_deadline(sandbox: Sandbox,
                                                                      hostile: HostileServer) -> None:
    """An email and an mpid make two OpenDSR requests; the mpid's cannot be sent yet (a 503 to it alone). The
    email's part finishing within the hour must not make the whole request look on time: the part not sent would
    take mParticle's documented days from now."""
    sandbox.set_durations(erasure=(60, 60))

    def refuse_the_mpid(seen: Seen, forward: Any) -> Answer:
        return Answer.of_json(503, {"error": "busy"}) if b"mpid" in seen.body else forward()

    hostile.on("POST", r"^/v3/requests", refuse_the_mpid)
    handle = handle_for(config_for(hostile, sandbox, **SLOW))
    req = replace(request("deletion", vendor_id="8000000000000000042"), due_at=datetime.now(UTC) + timedelta(days=3))
    result = handle.handle(req)
    assert result.status == "pending" and len(sandbox.dsrs()) == 1, result.message
    outlook = result.summary["deadline"]
    assert outlook["at_risk"] is True and outlook["expected_from"] == "estimate", outlook
    assert "at risk" in result.message


def test_running_out_of_time_now_and_then_is_not_in_a_row(sandbox: Sandbox, hostile: HostileServer) -> None:
    """A step that went through in between starts the count again: a slow status check on two days of a
    month-long wait is no reason to call a person."""
    sandbox.set_durations(erasure=(600, 600))
    handle = handle_for(config_for(hostile, sandbox, **SHORT))
    state = handle.handle(request("deletion")).state
    for _ in range(2):
        hostile.on("GET", r"^/v3/requests/", dripping())
        held = handle.handle(request("deletion"), state)
        assert held.status == "pending" and held.action_required is None, held.message
        hostile.clear()
        checked = handle.handle(request("deletion"), held.state)
        assert checked.status == "pending" and "ran out of time" not in checked.message
        state = checked.state


def test_a_dripping_oauth_token_endpoint_ends_within_the_budget(sandbox: Sandbox, hostile: HostileServer) -> None:
    hostile.on("POST", r"^/oauth/token", dripping())
    handle = handle_for(config_for(hostile, sandbox, oauth=True, **SLOW))
    result, elapsed = timed(lambda: handle.handle(request("opt_out")))
    assert elapsed <= TOTAL + MARGIN and result.status == "failed"


def test_the_connection_test_ends_within_the_budget_and_checks_every_api(sandbox: Sandbox,
                                                                         hostile: HostileServer) -> None:
    hostile.on("*", r"^/v3/", dripping())
    handle = handle_for(config_for(hostile, sandbox, **SLOW))
    outcome, elapsed = timed(handle.test_connection)
    assert elapsed <= TOTAL + MARGIN
    by_name = {c.name: c for c in outcome.checks}
    assert not by_name["dsr_api"].ok
    assert by_name["events_api"].ok and by_name["identity_api"].ok, "a hanging API took the others' time"


def test_throttle_waits_count_against_the_budget(sandbox: Sandbox, hostile: HostileServer) -> None:
    settings = {**SLOW, "throttle": {"limits": {"identity": 0.1}, "max_retry_seconds": 60}}
    handle = handle_for(config_for(hostile, sandbox, **settings))
    handle.handle(request("opt_out", request_id="first"))  # spends the only search for ten seconds
    result, elapsed = timed(lambda: handle.handle(request("opt_out", request_id="second")))
    assert elapsed <= TOTAL + MARGIN
    assert result.status == "failed" and result.error is not None and result.error.error_class == "retry_later"


def test_a_call_waits_for_another_calls_token_fetch_only_until_its_own_deadline(hostile: HostileServer) -> None:
    """One token fetch at a time, but a call whose deadline comes first does not wait for a slow fetch to end:
    it stops at its own deadline (the old lock held it until the other call's fetch ended)."""
    def slow_token(seen: Seen, forward: Any) -> Answer:
        def answer(out: Any) -> None:
            time.sleep(3)
            body = b'{"access_token": "' + b"t" * 40 + b'", "token_type": "Bearer", "expires_in": 3600}'
            out.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n%s" % (len(body), body))
            out.flush()
        return Answer(stream=answer)

    hostile.on("POST", r"^/oauth/token", slow_token)
    source = TokenSource(f"{hostile.url}/oauth/token", "client-id-1234", "client-secret-5678", "aud",
                         verify=True, redactor=Redactor(["client-secret-5678"]), api="dsr")
    first: dict[str, Any] = {}

    def fetch() -> None:
        with bounded(10):
            first["token"] = source.token()

    fetching = threading.Thread(target=fetch)
    fetching.start()
    time.sleep(0.5)  # the first call is waiting for the slow token endpoint, holding the fetch lock
    started = time.monotonic()
    with pytest.raises(OutOfTimeError), bounded(1.0):
        source.token()
    assert time.monotonic() - started < 1.5
    fetching.join(10)
    assert first["token"] == "t" * 40


def test_a_resolver_that_never_answers_cannot_hold_a_call_past_its_budget(
        sandbox: Sandbox, hostile: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """getaddrinfo runs before any socket exists, so no socket timeout or deadline shutdown reaches it: a silent
    resolver (glibc: 5 s per try, per server, per address family) held a 5 s call for 10.6 s."""
    released = threading.Event()
    lookups: list[str] = []
    real = socket.getaddrinfo

    def silent_resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "localhost":
            lookups.append(host)
            released.wait(30)  # a resolver that never answers (until the test ends)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", silent_resolver)
    config = config_for(hostile, sandbox, **SLOW)
    config["dsr"]["base_url"] = hostile.url.replace("127.0.0.1", "localhost")
    handle = handle_for(config)
    try:
        result, elapsed = timed(lambda: handle.handle(request("deletion")))
    finally:
        released.set()
    assert lookups, "the host name was never looked up"
    assert elapsed <= TOTAL + MARGIN, f"the call took {elapsed:.1f}s against a {TOTAL:g}s budget"
    assert result.status == "failed" and result.error is not None and result.error.error_class == "retry_later"
    assert hostile.requests("") == []
