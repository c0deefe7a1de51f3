"""The Profile API client (``developers/profile-api``): read a profile by mpid, or resolve one by immutable id.

It takes an OAuth 2.0 bearer token only (client credentials from ``sso.auth.mparticle.com``, audience
``https://api.mparticle.com``, tokens for 8 hours, cached). mParticle documents no 404: its status table gives
400 for "the requested profile is invalid" (and for bad syntax). The connector sends well-formed requests,
so it reads a 400 or 404 whose error says the *profile* is invalid or not found ("The requested profile is
invalid", ``PROFILE_NOT_FOUND``) as "no such profile", and anything else (an identity type that is not
immutable, say) as a refusal: "gone" must be mParticle saying so (docs silent on the body; the README notes the
choice). A 200 must carry the mpid asked about.
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
_NOT_FOUND_WORDS = ("invalid", "not found", "not_found", "no such", "does not exist")


@dataclass(frozen=True)
class ProfileResult:
    mpid: str | None  #: None only when the Profile API said there is no such profile
    identities: dict[str, str]

    @property
    def found(self) -> bool:
        return self.mpid is not None


def _error_text(body: Any) -> str:
    """The words of an error body that may say "no such profile" (strings only; a bounded amount)."""
    texts: list[Any] = []
    if isinstance(body, dict):
        texts += [body.get(k) for k in ("message", "error", "error_description", "code")]
        errors = body.get("errors")
        if isinstance(errors, list):
            texts += [e.get(k) for e in errors[:16] if isinstance(e, dict) for k in ("code", "message")]
    return " ".join(t for t in texts if isinstance(t, str))[:MAX_ERROR_TEXT].lower()


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
    text = _error_text(reply.body)
    if "profile" not in text or not any(word in text for word in _NOT_FOUND_WORDS):
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
