"""The IDSync client: ``POST /v1/search``, which finds a profile without ever creating one.

"No profile" decides that an opt-out has nothing to change and that an erasure is verified, so it must be
mParticle saying so: a 404 carrying IDSync's not-found error (``NOT_FOUND_ERROR``, as mParticle's web SDK
reads it). A 200 must carry a valid mpid (a non-zero signed 64-bit integer). Anything else is not a
verdict: a readable 404 without that error is refused (a wrong ``identity_base_url``, a proxy); a 200
without an mpid, or a 404 whose body is garbled, is :class:`Malformed` and retried.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector_mparticle.errors import RejectedError
from connector_mparticle.http.answers import Malformed, field_int, obj
from connector_mparticle.http.transport import ApiClient, Reply
from connector_mparticle.identities import identity_type

__all__ = ["IdentityClient", "SearchResult", "read_mpid"]

NOT_FOUND_CODE = "NOT_FOUND_ERROR"
_INT64 = (-(2**63), 2**63 - 1)
_MPID_TEXT = re.compile(r"-?[0-9]{1,19}")  #: ASCII only; fullmatch (``$`` would allow a final newline)
MAX_MATCHED = 64  #: identity types IDSync can match (about 30 exist)
MAX_IDENTITY_CHARS = 1024


def read_mpid(value: Any) -> str:
    """An mpid as its canonical decimal string; :class:`Malformed` unless it is a non-zero signed 64-bit integer:
    a JSON number, or its decimal text exactly as IDSync writes it (ASCII digits with an optional leading minus,
    nothing around them).

    The one rule for an mpid wherever one comes from (an answer, or a request's identifiers): Python's ``int()``
    would also take ``"8_2"``, ``"+82"``, ``" 82"`` or Arabic-Indic digits, and so turn a value nobody wrote as an
    mpid into somebody's."""
    if isinstance(value, str) and not _MPID_TEXT.fullmatch(value):
        raise Malformed("an mpid that is not decimal digits")
    number = field_int(value, "an mpid", *_INT64, text=True)
    if number == 0:
        raise Malformed("an mpid of 0 (mParticle's 'no user')")
    return str(number)


@dataclass(frozen=True)
class SearchResult:
    mpid: str | None  #: None only when IDSync said the profile is not found
    matched: Mapping[str, str]
    elapsed_ms: float

    @property
    def found(self) -> bool:
        return self.mpid is not None


def _says_not_found(body: Any) -> bool:
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return False
    return any(isinstance(e, dict) and e.get("code") == NOT_FOUND_CODE for e in errors)


def read_search(reply: Reply) -> SearchResult:
    """Parse an IDSync search answer (see the module docstring for what counts as found and not found)."""
    if reply.status == 404:
        if not reply.readable:
            raise Malformed("a 404 whose body is unreadable")  # garbled on the way: ask again
        if not _says_not_found(reply.body):
            raise RejectedError("the Identity API answered 404 without IDSync's not-found error, so whether the "
                                "profile exists is unknown (check inputs.identity_base_url)", api="identity",
                                status=404)
        return SearchResult(None, {}, reply.elapsed_ms)
    body = obj(reply.body if reply.readable else None, "a search answer")
    return SearchResult(read_mpid(body.get("mpid")), _matched(body.get("matched_identities")), reply.elapsed_ms)


def _matched(value: Any) -> dict[str, str]:
    """``matched_identities``, as far as it is a small object of strings (:meth:`IdentityClient.search` checks it
    against what was asked)."""
    if not isinstance(value, dict) or len(value) > MAX_MATCHED:
        return {}
    return {k: v for k, v in value.items() if isinstance(v, str) and len(k) + len(v) <= MAX_IDENTITY_CHARS}


class IdentityClient:
    def __init__(self, http: ApiClient, environment: str) -> None:
        self.http = http
        self.environment = environment

    def search(self, identities: Mapping[str, str]) -> SearchResult:
        """Search by canonical identity names (``email``, ``customer_id``)."""
        known = {}
        for name, value in identities.items():
            key = identity_type(name).idsync
            if key is None:
                raise ValueError(f"mParticle's Identity API cannot search by {name}")
            known[key] = value
        result: SearchResult = self.http.request("POST", "/v1/search", read_search,
                                                 body={"environment": self.environment, "known_identities": known},
                                                 accept=(200, 404), what="search identity")
        if result.found and not _answers(known, result.matched):
            raise RejectedError("the Identity API returned a profile whose matched identities are not the ones "
                                "searched for, so it is not this subject's (a faulty or hostile identity service)",
                                api="identity", status=200)
        return result


def _answers(asked: Mapping[str, str], matched: Mapping[str, str]) -> bool:
    """Whether a found profile's ``matched_identities`` is part of what was asked: IDSync returns "only identifiers
    which were matched from your request" (mParticle's IDSync HTTP API reference), so an identity not asked, or
    another value, means the answer is about someone else; and a profile found matches at least one identity."""
    return bool(matched) and all(asked.get(key) == value for key, value in matched.items())
