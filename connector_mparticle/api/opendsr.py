"""The OpenDSR v3 client: submit, status, cancel, probe and results download.

Answers are read strictly, through the decoding layer (:mod:`connector_mparticle.http.answers`): a status must
be for the request asked about, carry a status value from the spec, RFC 3339 timestamps in a plausible range
(UTC when they name no zone, as mParticle's v2 examples write them) and a results link that is a string of
reasonable length. Anything else is :class:`Malformed` (retried, and in the end "try again later"), never read
as progress or completion.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from connector_mparticle.api.partners import PartnerStatus, read_partners
from connector_mparticle.files import Staged
from connector_mparticle.http.answers import MAX_URL_CHARS, Malformed, field_enum, field_str, field_time, obj
from connector_mparticle.http.transport import ApiClient, Download, Reply

__all__ = ["DSR_STATUSES", "Cancelled", "DsrStatus", "OpenDsrClient", "Signable", "Submitted", "links_to", "no_records",
           "read_time"]

#: The request_status values of the OpenDSR spec (section 8) and mParticle's v3 page.
DSR_STATUSES = ("pending", "in_progress", "completed", "cancelled")
#: Timestamps outside these years are not mParticle's: a request made now completes within weeks.
_EARLIEST, _LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
NO_RECORDS = "no records match"  #: how a results link's 404 says nothing matched (see no_records)


def read_time(value: Any, field: str) -> datetime | None:
    """An RFC 3339 timestamp in a plausible range, or None; :class:`Malformed` otherwise.

    A timestamp without a zone is UTC: mParticle writes ``expected_completion_time`` that way
    (``developers/dsr-api/v2``: ``"2018-05-07T20:53:48.322652"``) and says the field is "in UTC" (v3)."""
    return field_time(value, field, _EARLIEST, _LATEST, utc_if_no_zone=True)


def _same_id(value: Any, expected: str) -> bool:
    try:
        return isinstance(value, str) and len(value) <= 64 and uuid.UUID(value) == uuid.UUID(expected)
    except ValueError:
        return False


@dataclass(frozen=True)
class Signable:
    """An answer exactly as received: what ``X-OpenDSR-Signature`` covers (:mod:`connector_mparticle.api.receipts`)."""

    status: int
    raw: bytes = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)

    @classmethod
    def of(cls, reply: Reply) -> Signable:
        return cls(reply.status, reply.raw, reply.headers)


@dataclass(frozen=True)
class DsrStatus:
    """What mParticle says about one request."""

    subject_request_id: str
    request_status: str  #: pending, in_progress, completed, cancelled
    expected_completion_time: datetime | None
    results_url: str | None
    answer: Signable | None = field(default=None, repr=False, compare=False)
    #: where mParticle forwarded the request (``extensions``; :mod:`connector_mparticle.api.partners`)
    partners: tuple[PartnerStatus, ...] = ()

    @classmethod
    def read(cls, body: Any, subject_request_id: str, answer: Signable | None = None) -> DsrStatus:
        """Parse a status object for ``subject_request_id`` (:class:`Malformed` if it is not one)."""
        body = obj(body, "a status")
        if not _same_id(body.get("subject_request_id"), subject_request_id):
            raise Malformed("a status for another subject_request_id")
        status = field_enum(body.get("request_status"), "a request_status", DSR_STATUSES)
        results_url = _results_url(body.get("results_url"))  # before the time: which problem is reported first stays
        return cls(subject_request_id, status, read_time(body.get("expected_completion_time"),
                                                         "an expected_completion_time"), results_url, answer,
                   read_partners(body.get("extensions")))


def _results_url(value: Any) -> str | None:
    """A results link: text of reasonable length (where it may point is the download policy's decision)."""
    return field_str(value, "a results_url", max_chars=MAX_URL_CHARS)


@dataclass(frozen=True)
class Submitted:
    """mParticle's acknowledgement of a new request (201), with the bytes its signature covers. It must name the
    request (``subject_request_id`` is required by OpenDSR 7.3 and in mParticle's example): a 201 that does not
    is not taken as one, so an answer mParticle never gave cannot stand for a submission it never received."""

    status: int
    attempts: int
    expected_completion_time: datetime | None
    received_time: datetime | None
    answer: Signable = field(repr=False, compare=False)

    @classmethod
    def read(cls, reply: Reply, subject_request_id: str) -> Submitted:
        body = reply.body
        body = obj(body if reply.readable else None, "an acknowledgement")
        if not _same_id(body.get("subject_request_id"), subject_request_id):  # required (OpenDSR 7.3, mParticle)
            raise Malformed("an acknowledgement that is not for this subject_request_id")
        return cls(reply.status, reply.attempts, read_time(body.get("expected_completion_time"),
                                                           "an expected_completion_time"),
                   read_time(body.get("received_time"), "a received_time"), Signable.of(reply))


@dataclass(frozen=True)
class Cancelled:
    """mParticle's answer to a cancel (``DELETE /requests/{id}``: 202 in the OpenDSR spec, section 9; mParticle's
    page gives the body, not the status): it must name the request, like an acknowledgement."""

    status: int
    received_time: datetime | None
    answer: Signable = field(repr=False, compare=False)

    @classmethod
    def read(cls, reply: Reply, subject_request_id: str) -> Cancelled:
        body = obj(reply.body if reply.readable else None, "a cancellation")
        if not _same_id(body.get("subject_request_id"), subject_request_id):
            raise Malformed("a cancellation that is not for this subject_request_id")
        return cls(reply.status, read_time(body.get("received_time"), "a received_time"), Signable.of(reply))


class OpenDsrClient:
    """The DSR API's routes."""

    def __init__(self, http: ApiClient) -> None:
        self.http = http

    def submit(self, body: dict[str, Any]) -> Submitted:
        """POST /v3/requests. 201 on success; :class:`AlreadyExistsError` if the id was used before."""
        subject_request_id = body["subject_request_id"]
        return self.http.request("POST", "/v3/requests", lambda r: Submitted.read(r, subject_request_id), body=body,
                                 accept=(201,), budgets=("dsr", "dsr_submit"),
                                 what=f"submit {body['subject_request_type']} request")

    def status(self, subject_request_id: str) -> DsrStatus:
        """GET /v3/requests/{id} (:class:`NotFoundError` if mParticle does not know it)."""
        def parse(reply: Reply) -> DsrStatus:
            return DsrStatus.read(reply.body if reply.readable else None, subject_request_id, Signable.of(reply))

        return self.http.request("GET", f"/v3/requests/{quote(subject_request_id, safe='')}", parse,
                                 what="check request status")

    def cancel(self, subject_request_id: str) -> Cancelled:
        """DELETE /v3/requests/{id}: cancel a request while it is ``pending`` (``developers/dsr-api/v3``). A request
        past that is refused (:class:`RejectedError`; the status is undocumented, the sandbox answers 400)."""
        return self.http.request("DELETE", f"/v3/requests/{quote(subject_request_id, safe='')}",
                                 lambda r: Cancelled.read(r, subject_request_id), accept=(200, 202),
                                 what="cancel request")

    def probe(self) -> Reply:
        """GET /v3/requests/0: a 404 proves the credentials work (no request has that id)."""
        return self.http.request("GET", "/v3/requests/0", lambda r: r, accept=(404,), what="check DSR credentials")

    def download(self, url: str, into: Staged, max_bytes: int) -> Download:
        """The results archive; :class:`NotFoundError` only for mParticle's "nothing matched" (:func:`no_records`),
        :class:`GoneError` only for a 410 in the DSR API's own error shape (:func:`results_verdict`)."""
        return self.http.download(url, into, max_bytes=max_bytes, verdict=results_verdict)


def results_verdict(status: int, body: Any) -> bool:
    """Whether a 404 or a 410 from the results link is mParticle's own answer: "nothing matched"
    (:func:`no_records`), or the link expired, in the DSR API's error shape with code 410 (a proxy's or a storage
    service's 410 page says nothing about mParticle's results)."""
    if status == 404:
        return no_records(body)
    return isinstance(body, dict) and type(body.get("code")) is int and body["code"] == 410 \
        and _dsr_errors(body.get("errors"))


def no_records(body: Any) -> bool:
    """Whether a 404 from the results link is mParticle saying that nothing matched the request's identities.

    mParticle's pages say only that the link answers 404 when nothing matched (``guides/data-subject-requests``).
    So the verdict must come in the DSR API's own error shape (``developers/dsr-api/v3`` "Errors": ``code``, the
    ``message``, and ``errors`` with a ``reason`` and a ``message`` each) and say so: its message begins with
    "No records match". A 404 in any other shape or words (a proxy's page, a storage service's "Bucket not
    found", the link's own "Results not found.") is not that verdict."""
    if not isinstance(body, dict) or type(body.get("code")) is not int or body["code"] != 404:
        return False
    message = body.get("message")
    return _dsr_errors(body.get("errors")) and isinstance(message, str) and message.lower().startswith(NO_RECORDS)


def _dsr_errors(errors: Any) -> bool:
    """Whether ``errors`` is the DSR API's list of errors: objects with a ``reason`` and a ``message`` each."""
    return isinstance(errors, list) and bool(errors) and all(
        isinstance(e, dict) and isinstance(e.get("reason"), str) and isinstance(e.get("message"), str)
        for e in errors[:16])


def links_to(results_url: str, subject_request_id: str) -> bool:
    """Whether a results link names the OpenDSR request it is the results of: one of its path segments is the
    request's id, alone or followed by an extension (``…/<id>/…``, ``…/<id>.zip``).

    The status answer carries the link, so a faulty or hostile status (or a proxy) could hand over another
    request's: another person's archive, written and returned as this subject's. mParticle does not document the
    link's form (``developers/dsr-api/v3``: a URL, valid 7 days); every link the connector has seen names its
    request, and one that does not is not taken (the request stays pending, and the README says so)."""
    wanted = subject_request_id.lower()
    segments = [unquote(part).lower() for part in urlsplit(results_url).path.split("/")]
    return any(segment == wanted or segment.startswith(wanted + ".") for segment in segments)
