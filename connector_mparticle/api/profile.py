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
from connector_mparticle.http.transport import ApiClient, Malformed, Reply
from connector_mparticle.settings import ProfileSettings

__all__ = ["ProfileClient", "ProfileResult"]

FIELDS = "user_identities,device_identities"
_NOT_FOUND_WORDS = ("invalid", "not found", "not_found", "no such", "does not exist")


@dataclass(frozen=True)
class ProfileResult:
    mpid: str | None  #: None only when the Profile API said there is no such profile
    identities: dict[str, str]

    @property
    def found(self) -> bool:
        return self.mpid is not None


def _error_text(body: Any) -> str:
    texts: list[str] = []
    if isinstance(body, dict):
        texts += [str(body.get(k, "")) for k in ("message", "error", "error_description", "code")]
        errors = body.get("errors")
        if isinstance(errors, list):
            texts += [f"{e.get('code', '')} {e.get('message', '')}" for e in errors if isinstance(e, dict)]
    return " ".join(texts).lower()


def read_profile(reply: Reply, mpid: str | None) -> ProfileResult:
    """Parse a Profile API answer (see the module docstring)."""
    if reply.status in (400, 404):
        return _no_profile(reply)
    if not reply.readable or not isinstance(reply.body, dict):
        raise Malformed("a profile that is not a JSON object")
    found = read_mpid(reply.body.get("mpid"))
    if mpid is not None and found != mpid:
        raise Malformed("a profile for another mpid")
    return ProfileResult(found, _identities(reply.body))


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
    """The profile's user and device identities by type (the first value of each type)."""
    identities: dict[str, str] = {}
    for section in ("user_identities", "device_identities"):
        for entry in body.get(section) or []:
            if isinstance(entry, dict) and isinstance(entry.get("type"), str) and entry.get("value") is not None:
                identities.setdefault(entry["type"], str(entry["value"]))
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
