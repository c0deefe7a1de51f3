"""The "completed means done, for the right person" promise, stated over generated input (hypothesis).

One property per class the truth attack broke (``/tests/adversarial/test_truth.py`` pins each class end to end
through the sandbox and the hostile proxy).
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from connector_mparticle.api.identity import read_mpid
from connector_mparticle.errors import ConfigurationError
from connector_mparticle.flows.subject import Subject, opt_out_batch
from connector_mparticle.http.answers import Malformed
from connector_mparticle.settings import Settings, parse_settings
from dsr_framework.models import DsrRequest

BASE_CONFIG: dict[str, Any] = {
    "dsr": {"auth": {"type": "basic", "key": "wkey-0001", "secret": "ws-secret-value-0001"}},
    "inputs": {"auth": {"type": "basic", "key": "ikey-0001", "secret": "is-secret-value-0001"}},
}
INT64 = st.integers(-(2**63), 2**63 - 1).filter(lambda n: n != 0)
REQUEST_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,20}", fullmatch=True)
PURPOSES = st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), max_size=3, unique=True)


@functools.lru_cache(maxsize=64)
def _parsed(frozen: str) -> Settings:
    return parse_settings(json.loads(frozen))


def settings_with(**overrides: Any) -> Settings:
    return _parsed(json.dumps({**BASE_CONFIG, **overrides}, sort_keys=True))


def opt_out_request(request_id: str, mpid: str) -> DsrRequest:
    return DsrRequest(request_id, "opt_out", "ccpa", {"vendor_id": mpid}, datetime(2026, 11, 29, tzinfo=UTC))


# -- A1: the opt-out's de-duplication key ----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(REQUEST_IDS, REQUEST_IDS, INT64, INT64, PURPOSES, PURPOSES)
def test_an_opt_out_batch_is_deduplicated_only_against_the_same_request_and_the_same_content(
        id_a: str, id_b: str, mpid_a: int, mpid_b: int, purposes_a: list[str], purposes_b: list[str]) -> None:
    """Two batches share mParticle's de-duplication key exactly when they are the same request's same batch: a
    request id reused for another profile, or a configuration that records more, is never dropped as a duplicate."""
    batch_a = opt_out_batch(opt_out_request(id_a, str(mpid_a)), settings_with(opt_out={"gdpr_purposes": purposes_a}),
                            str(mpid_a))
    batch_b = opt_out_batch(opt_out_request(id_b, str(mpid_b)), settings_with(opt_out={"gdpr_purposes": purposes_b}),
                            str(mpid_b))
    content_a = {k: v for k, v in batch_a.items() if k != "source_request_id"}
    content_b = {k: v for k, v in batch_b.items() if k != "source_request_id"}
    same = id_a == id_b and content_a == content_b
    assert (batch_a["source_request_id"] == batch_b["source_request_id"]) == same


# -- F1: one rule for an mpid ----------------------------------------------------------------------------------


def _canonical_int64(text: str) -> int | None:
    """What an mpid written as text is, by the documented rule alone: ASCII digits, an optional leading minus."""
    body = text[1:] if text.startswith("-") else text
    if not body or any(c not in "0123456789" for c in body) or len(body) > 19:
        return None
    number = int(text)
    return number if number != 0 and -(2**63) <= number < 2**63 else None


MPID_LIKE = st.one_of(
    INT64.map(str),
    st.text(st.sampled_from("0123456789-+_ \n" + "".join(map(chr, range(0x0660, 0x066A))) + "\u00b2\U0001d7ce"),
            min_size=1, max_size=22),
    st.integers().map(str),
)


@settings(max_examples=400, deadline=None)
@given(MPID_LIKE)
def test_an_mpid_is_read_by_one_strict_rule(text: str) -> None:
    """``read_mpid`` takes exactly ASCII decimal digits (optional leading minus) of a non-zero int64; never what
    Python's ``int()`` also forgives (``_``, ``+``, spaces, other scripts' digits)."""
    expected = _canonical_int64(text)
    try:
        assert read_mpid(text) == str(expected)
    except Malformed:
        assert expected is None


@settings(max_examples=200, deadline=None)
@given(MPID_LIKE)
def test_a_request_mpid_is_used_only_when_it_is_one(text: str) -> None:
    """A request's mpid that the rule refuses stops the request (nothing is sent); one it takes is sent canonical."""
    assume(text.strip() == text and "\n" not in text)
    request = opt_out_request("T-1", text)
    expected = _canonical_int64(text)
    if expected is None:
        with pytest.raises(ConfigurationError) as refused:
            Subject.of(request, settings_with())
        assert "vendor_id" in str(refused.value)
    else:
        assert Subject.of(request, settings_with()).get("mpid") == str(expected)
        assert opt_out_batch(request, settings_with(), text)["mpid"] == expected
