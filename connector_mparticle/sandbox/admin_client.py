"""A typed client for the sandbox admin API (:class:`~connector_mparticle.sandbox.Sandbox` offers the same methods)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

__all__ = ["SandboxAdmin", "SandboxAdminError"]


class SandboxAdminError(RuntimeError):
    """The admin API refused a call."""


class SandboxAdmin:
    """Seed and inspect a running sandbox at ``url`` (in this process or another one)."""

    def __init__(self, url: str, verify: bool | str = True) -> None:
        self.url = url.rstrip("/")
        self._verify = verify
        self.session = requests.Session()

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.session.request(method, f"{self.url}/_sandbox{path}", json=body, params=params or None,
                                        timeout=10, verify=self._verify)
        if response.status_code == 404 and method == "GET" and path.count("/") > 1:
            return None
        if response.status_code >= 400:
            raise SandboxAdminError(f"{method} /_sandbox{path}: HTTP {response.status_code} {response.text}")
        return response.json() if response.content else None

    def credentials(self) -> dict[str, Any]:
        """The keys, secrets and OAuth client the sandbox accepts."""
        result: dict[str, Any] = self._call("GET", "/credentials")
        return result

    def seed_profile(self, identities: Mapping[str, str], *, attributes: Mapping[str, Any] | None = None,
                     consent: Mapping[str, Any] | None = None, batches: list[Mapping[str, Any]] | None = None,
                     audiences: list[str] | None = None, mpid: int | str | None = None) -> dict[str, Any]:
        """Create a profile (identities by canonical type, e.g. ``email``, ``customer_id``); returns it."""
        body: dict[str, Any] = {"identities": dict(identities), "attributes": dict(attributes or {}),
                                "consent": consent, "batches": batches or [], "audiences": audiences or []}
        if mpid is not None:
            body["mpid"] = str(mpid)
        result: dict[str, Any] = self._call("POST", "/profiles", body)
        return result

    def profile(self, mpid: int | str) -> dict[str, Any] | None:
        """A profile with its stored batches, or None if it does not exist (or was erased)."""
        result: dict[str, Any] | None = self._call("GET", f"/profiles/{mpid}")
        return result

    def find_profiles(self, /, **identities: str) -> list[dict[str, Any]]:
        """Profiles matching any of the given identities (all profiles when none are given)."""
        result: list[dict[str, Any]] = self._call("GET", "/profiles", **identities)
        return result

    def dsrs(self) -> list[dict[str, Any]]:
        """Every OpenDSR request the sandbox received, oldest first."""
        result: list[dict[str, Any]] = self._call("GET", "/dsrs")
        return result

    def dsr(self, subject_request_id: str) -> dict[str, Any] | None:
        """One OpenDSR request as the sandbox holds it (identities, matched mpids), or None."""
        result: dict[str, Any] | None = self._call("GET", f"/dsrs/{subject_request_id}")
        return result

    def force_status(self, subject_request_id: str, status: str) -> dict[str, Any]:
        """Set a request's status (pending, in_progress, completed, cancelled) and stop its schedule."""
        result: dict[str, Any] = self._call("POST", f"/dsrs/{subject_request_id}/status", {"status": status})
        return result

    def limits(self) -> dict[str, Any]:
        """The limits in force, by API (an API that is not listed is not limited)."""
        result: dict[str, Any] = self._call("GET", "/limits")
        return result

    def set_limits(self, /, **limits: Mapping[str, Any]) -> dict[str, Any]:
        """E.g. ``set_limits(identity={"limit": 50, "window_seconds": 1}, events={"external_share": 0.5})``."""
        result: dict[str, Any] = self._call("PUT", "/limits", {k: dict(v) for k, v in limits.items()})
        return result

    def faults(self) -> dict[str, Any]:
        """The faults switched on, by API."""
        result: dict[str, Any] = self._call("GET", "/faults")
        return result

    def set_faults(self, /, **faults: Mapping[str, Any]) -> dict[str, Any]:
        """E.g. ``set_faults(dsr={"error_rate": 0.2}, events={"force_429": 5, "retry_after": 2})``."""
        result: dict[str, Any] = self._call("PUT", "/faults", {k: dict(v) for k, v in faults.items()})
        return result

    def clear_faults(self) -> None:
        """Switch every fault off."""
        self._call("DELETE", "/faults")

    def durations(self) -> dict[str, Any]:
        """Seconds pending and in progress per request type, lateness and results lifetime."""
        result: dict[str, Any] = self._call("GET", "/durations")
        return result

    def set_durations(self, *, access: tuple[float, float] | None = None, erasure: tuple[float, float] | None = None,
                      overrun_seconds: float | None = None, results_ttl_seconds: float | None = None) -> dict[str, Any]:
        """Seconds pending and in progress per request type; lateness; how long results stay downloadable."""
        body: dict[str, Any] = {"durations": {}}
        for kind, pair in (("access", access), ("erasure", erasure)):
            if pair is not None:
                body["durations"][kind] = {"pending": pair[0], "in_progress": pair[1]}
        if overrun_seconds is not None:
            body["overrun_seconds"] = overrun_seconds
        if results_ttl_seconds is not None:
            body["results_ttl_seconds"] = results_ttl_seconds
        result: dict[str, Any] = self._call("PUT", "/durations", body)
        return result

    def workspace(self) -> dict[str, Any]:
        """The workspace settings: identity strategy, GDPR purposes, live profile, forwarding, OAuth APIs."""
        result: dict[str, Any] = self._call("GET", "/workspace")
        return result

    def set_workspace(self, /, **settings: Any) -> dict[str, Any]:
        """E.g. ``set_workspace(gdpr_purposes=["marketing"], include_live_profile=True,
        identity={"login_ids": ["customer_id", "email"]}, oauth_apis=["dsr", "events", "identity"])``."""
        result: dict[str, Any] = self._call("PUT", "/workspace", settings)
        return result

    def shapes(self) -> dict[str, Any]:
        """Shape variation: ``{"variation": bool, "seed": int}``."""
        result: dict[str, Any] = self._call("GET", "/shapes")
        return result

    def set_shapes(self, *, variation: bool | None = None, seed: int | None = None) -> dict[str, Any]:
        """Switch shape variation on or off and/or set its seed (the others stay as they are)."""
        body: dict[str, Any] = {}
        if variation is not None:
            body["variation"] = variation
        if seed is not None:
            body["seed"] = seed
        result: dict[str, Any] = self._call("PUT", "/shapes", body)
        return result

    def ignored_consent(self) -> list[dict[str, Any]]:
        """Consent sent for GDPR purposes the workspace has not defined (mParticle ignores it)."""
        result: list[dict[str, Any]] = self._call("GET", "/consent/ignored")
        return result

    def request_log(self, since: int = 0, api: str | None = None) -> list[dict[str, Any]]:
        """Requests served (method, path, api, status, client, time), optionally for one API."""
        params: dict[str, Any] = {"since": since}
        if api:
            params["api"] = api
        result: list[dict[str, Any]] = self._call("GET", "/log", **params)["entries"]
        return result

    def clear_log(self) -> None:
        """Forget the request log."""
        self._call("DELETE", "/log")

    def callbacks(self) -> list[dict[str, Any]]:
        """Status callbacks sent (or not sent) so far."""
        result: list[dict[str, Any]] = self._call("GET", "/callbacks")
        return result

    def stats(self) -> dict[str, int]:
        """Counts: ``dsrs``, ``profiles``, ``batches_stored``, ``duplicate_batches_ignored`` and others."""
        result: dict[str, int] = self._call("GET", "/stats")
        return result

    def expire_tokens(self) -> None:
        """Make every OAuth token the sandbox issued expire now."""
        self._call("POST", "/oauth/expire")

    def revoke_tokens(self) -> None:
        """Forget every OAuth token the sandbox issued."""
        self._call("POST", "/oauth/revoke")

    def ca_pem(self) -> bytes:
        """The sandbox CA certificate (PEM), to trust its HTTPS and its processor certificate."""
        response = self.session.get(f"{self.url}/_sandbox/ca.pem", timeout=10, verify=self._verify)
        response.raise_for_status()
        return response.content

    def reset(self) -> None:
        """Forget all profiles, requests, tokens, faults, settings changes and the log; restore default limits
        and the shape settings the sandbox started with."""
        self._call("POST", "/reset")
