"""Class 11: a pending request stays pending, with its state, after any hostile answer at any step.

Properties over generated answers (hypothesis), served by the hostile proxy over real loopback sockets at each
step of a real request: the submission of a second OpenDSR request, a status check, the results download, the
erasure's identity search, its Profile API read, and the OAuth token fetch behind that read. An answer is
generated whole: any status that is not a documented verdict (the step's own success status, other 1xx/2xx,
429, any 5xx), hostile header values (``Retry-After``, ``Content-Type``, ``Content-Encoding``, the usage
header, ``Content-Length``: Unicode digits, huge, negative, repeated), any body (random JSON of any shape,
nesting far deeper than allowed, huge and non-finite numbers, duplicate keys, lone surrogates, bytes that are
not UTF-8) and any framing (exact, until close, a declared length longer than the body, broken chunks).

The guarantee: the call ends ``pending`` with a state and a next check time (never ``failed``, never
``internal``), nothing is written to the output folder, and the next call accepts the state (it is not
"ignored, resuming from mParticle's own record"). Example counts stay modest so the suite stays fast; the
``slow`` variant runs each property with many more.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connector_mparticle.http.answers import Malformed, json_body
from connector_mparticle.http.auth import ACCESS_TOKEN
from connector_mparticle.sandbox import Sandbox
from dsr_framework.host import ConnectorHandle
from dsr_framework.models import Result
from tests.adversarial.conftest import config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer, Seen
from tests.support.hosting import request

STATUS_PATH = r"^/v3/requests/[0-9a-f-]{36}$"
QUICK = settings(max_examples=8, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LONG = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
#: Retries give up quickly, so each generated answer costs a fraction of a second.
SETTINGS: dict[str, Any] = {"throttle": {"max_retry_seconds": 0.15, "max_retry_after_seconds": 0.05},
                            "verification": {"attempts": 20, "grace_period_seconds": 60}}
RESUMED_BLIND = "was not written by this connector"
_ids = itertools.count()

latin1 = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                 max_size=30)
header_values = latin1 | st.sampled_from([
    "²", "³", "¹", "1e999", "nan", "inf", "-1", "+5", "5_0", " 7 ", "0x10", "9" * 40, "5, 10", "",
    "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", "application/json; charset=utf-16",
    "text/html", "gzip", "br", "deflate, gzip", "identity"])
headers = st.dictionaries(st.sampled_from(["Retry-After", "Content-Type", "Content-Encoding",
                                           "X-mp-rate-limit-percentage-used", "Location", "X-OpenDSR-Signature",
                                           "X-OpenDSR-Processor-Domain"]), header_values, max_size=4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20)
#: Objects shaped like mParticle's answers, with fields of any type.
shaped = st.fixed_dictionaries({}, optional={
    key: json_values for key in ("subject_request_id", "request_status", "expected_completion_time", "results_url",
                                 "received_time", "encoded_request", "controller_id", "mpid", "errors",
                                 "access_token", "expires_in", "token_type", "scope", "user_identities")})
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.integers(33, 50_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(33, 5_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(101, 5_000).map(lambda n: b'{"mpid": ' + b"9" * n + b', "expires_in": 1' + b"0" * n + b"}"),
    st.sampled_from([b"NaN", b'{"expires_in": 1e999, "access_token": "x"}', b'{"mpid": Infinity}',
                     b'{"request_status": "completed", "request_status": "pending"}', b'{"results_url": "\\ud800"}',
                     b"\xff\xfe{\x00}\x00", b"\xef\xbb\xbf{}", b'{"access_token": ["a"], "scope": 5}',
                     b'{"errors": [{"code": "NOT_FOUND_ERROR"}]}', b""]),
)
FRAMINGS = ("exact", "until-close", "short", "broken-chunks", "hostile-length")


@dataclass(frozen=True)
class Hostile:
    """One generated answer."""

    status: int
    headers: dict[str, str]
    body: bytes
    framing: str
    length: str

    def answer(self) -> Answer:
        return Answer(stream=self.write)

    def write(self, out: BinaryIO) -> None:
        head = [f"HTTP/1.1 {self.status} Hostile", *(f"{k}: {v}" for k, v in self.headers.items()),
                "Connection: close"]
        body = self.body
        if self.framing == "exact":
            head.append(f"Content-Length: {len(body)}")
        elif self.framing == "short":
            head.append(f"Content-Length: {len(body) + 10}")
        elif self.framing == "hostile-length":
            head.append(f"Content-Length: {self.length}")
        elif self.framing == "broken-chunks":
            head.append("Transfer-Encoding: chunked")
            body = b"zz\r\n" + body
        out.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        out.flush()


def hostile_answers(ok: int, complete_ok: bool = True) -> st.SearchStrategy[Hostile]:
    """Answers that are not a documented verdict: ``ok`` (the step's success status), other 1xx/2xx, 429, 5xx.
    With ``complete_ok`` False, an ``ok`` answer always breaks off (a whole one is a verdict at that step)."""
    statuses = st.sampled_from([ok, ok, ok, 200, 201, 202, 203, 204, 206, 299, 429, 500, 501, 502, 503, 504, 520,
                                599])
    answers = st.builds(Hostile, statuses, headers, bodies, st.sampled_from(FRAMINGS), header_values)
    return answers if complete_ok else answers.filter(
        lambda h: h.status != ok or h.framing in ("short", "broken-chunks"))


@pytest.fixture
def steps(sandbox: Sandbox, hostile: HostileServer) -> Steps:
    return Steps(sandbox, hostile, handle_for(config_for(hostile, sandbox, **SETTINGS)))


@dataclass
class Steps:
    """Brings a fresh request to a step, serves one hostile answer there, and checks the guarantee."""

    sandbox: Sandbox
    hostile: HostileServer
    handle: ConnectorHandle

    def fresh(self, kind: str, folder: Path, *, seed: bool = False, **identities: str) -> tuple[Any, Result]:
        """A new request for a new subject (mParticle refuses a second request for the same identities while
        one is in progress)."""
        self.hostile.clear()
        req = subject_request(kind, folder, **identities)
        if seed:
            self.sandbox.seed_profile({"email": req.identities["email"]})
        first = self.handle.handle(req)
        assert first.status == "pending" and first.state, first.message
        return req, first

    def completed(self, first: Result) -> None:
        for subject_request_id in first.summary["subject_request_ids"]:
            self.sandbox.force_status(subject_request_id, "completed")

    def serve(self, method: str, pattern: str, hostile: Hostile, after: int = 0) -> None:
        """Answer matching requests with ``hostile`` (forwarding the first ``after`` of them)."""
        seen = itertools.count()

        def rule(request_seen: Seen, forward: Callable[[], Answer]) -> Answer:
            return forward() if next(seen) < after else hostile.answer()

        self.hostile.on(method, pattern, rule)

    def holds(self, req: Any, state: Any, folder: Path) -> Result:
        """The hostile call: still pending, with a state the next (normal) call accepts."""
        result = self.handle.handle(req, state)
        assert result.status == "pending", (result.status, result.message)
        assert result.state and result.next_check_at is not None and result.error is None
        assert list(folder.iterdir()) == [], "a hostile answer left files behind"
        self.hostile.clear()
        after = self.handle.handle(req, result.state)
        assert after.status in ("pending", "completed"), after.message
        assert not any(RESUMED_BLIND in e.outcome for e in after.audit), "the next call ignored the state"
        return after


def subject_request(kind: str, folder: Path, **identities: str) -> Any:
    number = next(_ids)
    return request(kind, request_id=f"hostile-answer-{number}", email=f"subject-{number}@example.com",
                   output_dir=str(folder), **identities)


def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("out")


def status_check(steps: Steps, answer: Hostile, kind: str, folder: Path) -> None:
    req, first = steps.fresh(kind, folder)
    steps.serve("GET", STATUS_PATH, answer)
    steps.holds(req, first.state, folder)


def second_submission(steps: Steps, answer: Hostile, folder: Path) -> None:
    """Email and mpid make two OpenDSR requests: the first is accepted, the second gets the hostile answer."""
    steps.hostile.clear()
    req = subject_request("deletion", folder, mpid=str(10**12 + next(_ids)))
    steps.serve("POST", r"^/v3/requests$", answer, after=1)
    result = steps.handle.handle(req)
    assert result.status == "pending" and result.state and result.error is None, (result.status, result.message)
    assert len(result.state["parts"]) == 1, "an answer mParticle never gave was taken as its acknowledgement"
    steps.hostile.clear()
    after = steps.handle.handle(req, result.state)
    assert after.status == "pending" and len(after.state["parts"]) == 2, after.message
    assert not any(RESUMED_BLIND in e.outcome for e in after.audit), "the next call ignored the state"


def results_download(steps: Steps, answer: Hostile, folder: Path) -> None:
    req, first = steps.fresh("access", folder, seed=True)
    steps.completed(first)
    steps.serve("GET", r"^/dsr-results/", answer)
    steps.holds(req, first.state, folder)


def verification(steps: Steps, answer: Hostile, method: str, pattern: str, folder: Path) -> None:
    req, first = steps.fresh("deletion", folder, mpid=str(10**12 + next(_ids)))
    steps.completed(first)
    steps.sandbox.expire_tokens()  # the Profile API read asks the token endpoint again
    steps.serve(method, pattern, answer)
    steps.holds(req, first.state, folder)


def not_a_token(answer: Hostile) -> bool:
    try:
        token = json_body(answer.body).get("access_token")
    except (Malformed, AttributeError):
        return True
    return not (isinstance(token, str) and ACCESS_TOKEN.fullmatch(token))


@QUICK
@given(answer=hostile_answers(200), kind=st.sampled_from(["access", "deletion"]))
def test_a_hostile_status_answer_keeps_the_request_pending(steps: Steps, tmp_path_factory: Any, answer: Hostile,
                                                          kind: str) -> None:
    status_check(steps, answer, kind, scratch(tmp_path_factory))


@QUICK
@given(status=st.integers(100, 999), body=bodies, head=headers)
def test_any_status_at_all_is_classified_and_only_a_refusal_ends_a_pending_request(
        steps: Steps, tmp_path_factory: Any, status: int, body: bytes, head: dict[str, str]) -> None:
    """Issue 21: once mParticle has accepted a request, no answer to its status check ends it. 3xx and 4xx (a
    proxy's page, a redirect, which is never followed) keep it pending with its state and name the fix in
    ``action_required`` (429 and 409 are tried again by themselves); anything else (1xx, 2xx, 5xx, a number HTTP
    does not define) keeps it pending too. The message starts with what mParticle did."""
    folder = scratch(tmp_path_factory)
    req, first = steps.fresh("deletion", folder)
    steps.serve("GET", STATUS_PATH, Hostile(status, head, body, "exact", ""))
    result = steps.handle.handle(req, first.state)
    assert result.status == "pending" and result.state, (status, result.message)
    assert result.message.startswith("mParticle accepted the erasure"), result.message
    if 300 <= status < 500 and status not in (409, 429):
        assert result.action_required is not None, (status, result.message)


@QUICK
@given(answer=hostile_answers(201))
def test_a_hostile_answer_to_a_later_submission_keeps_the_request_pending(steps: Steps, tmp_path_factory: Any,
                                                                         answer: Hostile) -> None:
    second_submission(steps, answer, scratch(tmp_path_factory))


@QUICK
@given(answer=hostile_answers(200, complete_ok=False))
def test_a_hostile_results_download_keeps_the_request_pending(steps: Steps, tmp_path_factory: Any,
                                                             answer: Hostile) -> None:
    results_download(steps, answer, scratch(tmp_path_factory))


@QUICK
@given(answer=hostile_answers(200))
def test_a_hostile_identity_search_keeps_the_erasure_pending(steps: Steps, tmp_path_factory: Any,
                                                            answer: Hostile) -> None:
    verification(steps, answer, "POST", r"^/v1/search", scratch(tmp_path_factory))


@QUICK
@given(answer=hostile_answers(200))
def test_a_hostile_profile_read_keeps_the_erasure_pending(steps: Steps, tmp_path_factory: Any,
                                                         answer: Hostile) -> None:
    verification(steps, answer, "GET", r"^/userprofile/", scratch(tmp_path_factory))


@QUICK
@given(answer=hostile_answers(200))
def test_a_hostile_token_answer_keeps_the_erasure_pending(steps: Steps, tmp_path_factory: Any,
                                                         answer: Hostile) -> None:
    assume(not_a_token(answer))
    verification(steps, answer, "POST", r"^/oauth/token", scratch(tmp_path_factory))


@pytest.mark.slow
@LONG
@given(answer=hostile_answers(200), step=st.sampled_from(["status", "search", "profile", "token", "download"]))
def test_every_step_keeps_the_request_pending_after_many_hostile_answers(steps: Steps, tmp_path_factory: Any,
                                                                        answer: Hostile, step: str) -> None:
    folder = scratch(tmp_path_factory)
    if step == "status":
        status_check(steps, answer, "access", folder)
    elif step == "download":
        assume(answer.status != 200 or answer.framing in ("short", "broken-chunks"))
        results_download(steps, answer, folder)
    elif step == "token":
        assume(not_a_token(answer))
        verification(steps, answer, "POST", r"^/oauth/token", folder)
    else:
        verification(steps, answer, *{"search": ("POST", r"^/v1/search"),
                                      "profile": ("GET", r"^/userprofile/")}[step], folder)
