"""The Profile API client (``developers/profile-api``): read a profile by mpid, or resolve one by immutable id.

It takes an OAuth 2.0 bearer token only (client credentials from ``sso.auth.mparticle.com``, audience
``https://api.mparticle.com``, tokens for 8 hours, cached). mParticle documents no 404: its status table gives
400 for "The request syntax is invalid or the requested profile is invalid". So "no such profile" is read from
that answer alone, in mParticle's words and in an error's shape: a 400 (or a 404, which some deployments send)
whose body is an error object (``{"errors": [{"code", "message"}]}``, IDSync's shape, or ``{"message"}``) with
an error whose message *begins* with "The requested profile is invalid" (a code alone is no verdict: mParticle
documents none).
Anything else is a refusal, never "gone": a gateway's or a framework's 404 that merely repeats the
``/userprofile/`` path, "Invalid value for 'fields' in profile request", an unknown workspace, an identity type
that is not immutable (docs silent on the body; the README notes the choice). A 200 must carry the mpid asked
about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from connector_mparticle.api.identity import read_mpid
from connector_mparticle.errors import RejectedError
from connector_mparticle.http.answers import Malformed, obj
from connector_mparticle.http.transport import ApiClient, Reply
from connector_mparticle.settings import ProfileSettings

__all__ = ["ProfileClient", "ProfileResult"]

FIELDS = "user_identities,device_identities"
MAX_IDENTITIES = 256  #: of each section read (a profile holds one value per identity type, about 30 types)
MAX_ERROR_TEXT = 2048
NO_PROFILE_WORDS = "the requested profile is invalid"  #: the status table's words for a 400 (developers/profile-api)


@dataclass(frozen=True)
class ProfileResult:
    mpid: str | None  #: None only when the Profile API said there is no such profile
    identities: dict[str, str]

    @property
    def found(self) -> bool:
        return self.mpid is not None


def _errors(body: Any) -> list[dict[str, Any]]:
    """The error objects of an error body: ``{"errors": [...]}`` (the first few), or the body itself when it is
    one ``{"message": ...}`` object."""
    if not isinstance(body, dict):
        return []
    errors = body.get("errors")
    if isinstance(errors, list):
        return [e for e in errors[:16] if isinstance(e, dict)]
    return [body] if "message" in body else []


def _says_no_profile(body: Any) -> bool:
    """Whether an error body is mParticle's "the requested profile is invalid" (see the module docstring)."""
    for error in _errors(body):
        message = error.get("message")
        if isinstance(message, str) and message[:MAX_ERROR_TEXT].lower().startswith(NO_PROFILE_WORDS):
            return True
    return False


def read_profile(reply: Reply, mpid: str | None) -> ProfileResult:
    """Parse a Profile API answer (see the module docstring)."""
    if reply.status in (400, 404):
        return _no_profile(reply)
    body = obj(reply.body if reply.readable else None, "a profile")
    found = read_mpid(body.get("mpid"))
    if mpid is not None and found != mpid:
        raise Malformed("a profile for another mpid")
    return ProfileResult(found, _identities(body))


def _no_profile(reply: Reply) -> ProfileResult:
    """A 400 or 404: "no such profile" only when the error says so; a refusal otherwise."""
    if not reply.readable:
        raise Malformed(f"a {reply.status} whose body is unreadable")
    if not _says_no_profile(reply.body):
        raise RejectedError(f"the Profile API refused the request (HTTP {reply.status}) without saying the "
                            "profile does not exist", api="profile", status=reply.status)
    return ProfileResult(None, {})


def _identities(body: dict[str, Any]) -> dict[str, str]:
    """The profile's user and device identities by type (the first value of each type); entries that are not
    ``{type, value}`` objects of text are skipped (the mpid decides what was found, not this list)."""
    identities: dict[str, str] = {}
    for section in ("user_identities", "device_identities"):
        entries = body.get(section)
        for entry in entries[:MAX_IDENTITIES] if isinstance(entries, list) else []:
            kind, value = (entry.get("type"), entry.get("value")) if isinstance(entry, dict) else (None, None)
            if isinstance(kind, str) and isinstance(value, (str, int)) and not isinstance(value, bool):
                identities.setdefault(kind[:64], str(value)[:1024])
    return identities


class ProfileClient:
    """``GET /userprofile/v1/{org}/{account}/{workspace}/{mpid}`` and ``POST /userprofile/v1/resolve/...``."""

    def __init__(self, http: ApiClient, settings: ProfileSettings, environment: str) -> None:
        self.http = http
        self.settings = settings
        self.environment = environment

    def by_mpid(self, mpid: str) -> ProfileResult:
        """The profile with ``mpid``, or a result that is not ``found`` when mParticle has none."""
        path = f"/userprofile/v1{self.settings.path()}/{quote(mpid, safe='')}?fields={FIELDS}"
        return self.http.request("GET", path, lambda r: read_profile(r, mpid), accept=(200, 400, 404),
                                 what="read profile by mpid")

    def resolve(self, profile_type: str, value: str) -> ProfileResult:
        """The profile holding immutable id ``value`` of ``profile_type`` (a Profile API type name)."""
        body = {"environment_type": self.environment, "identity": {"type": profile_type, "value": value}}
        return self.http.request("POST", f"/userprofile/v1/resolve{self.settings.path()}?fields={FIELDS}",
                                 lambda r: read_profile(r, None), body=body, accept=(200, 400, 404),
                                 what="resolve profile by immutable id")
