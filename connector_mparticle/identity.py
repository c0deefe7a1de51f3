"""The IDSync client: ``POST /v1/search``, which finds a profile without ever creating one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connector_mparticle.identities import identity_type
from connector_mparticle.transport import ApiClient

__all__ = ["IdentityClient", "SearchResult"]


@dataclass(frozen=True)
class SearchResult:
    mpid: str | None  #: None when mParticle has no such profile
    matched: Mapping[str, str]
    elapsed_ms: float

    @property
    def found(self) -> bool:
        return self.mpid is not None


class IdentityClient:
    def __init__(self, http: ApiClient, environment: str) -> None:
        self.http = http
        self.environment = environment

    def search(self, identities: Mapping[str, str]) -> SearchResult:
        """Search by canonical identity names (``email``, ``customer_id``); 404 means no profile."""
        known = {}
        for name, value in identities.items():
            key = identity_type(name).idsync
            if key is None:
                raise ValueError(f"mParticle's Identity API cannot search by {name}")
            known[key] = value
        reply = self.http.call("POST", "/v1/search", body={"environment": self.environment, "known_identities": known},
                               accept=(200, 404), what="search identity")
        if reply.status == 404:
            return SearchResult(None, {}, reply.elapsed_ms)
        body = reply.body if isinstance(reply.body, dict) else {}
        mpid = body.get("mpid")
        return SearchResult(str(mpid) if mpid is not None else None, dict(body.get("matched_identities") or {}),
                            reply.elapsed_ms)
