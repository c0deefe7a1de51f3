"""Each API's error body, as its documentation shows it, and the sandbox's 429 and 5xx answers."""

from __future__ import annotations

from connector_mparticle.sandbox.calls import Reply
from connector_mparticle.sandbox.limits import retry_after_header

__all__ = ["api_error", "dsr_error", "events_error", "identity_error", "profile_error", "server_error",
           "too_many_requests"]


def dsr_error(status: int, message: str, reason: str = "InvalidOperationException",
              domain: str = "Validation") -> Reply:
    """``developers/dsr-api/v3`` "Errors": code, message and a list of errors, at the top level."""
    return Reply(status, {"code": status, "message": message,
                          "errors": [{"domain": domain, "reason": reason, "message": message}]})


def identity_error(status: int, code: str, message: str) -> Reply:
    """``developers/idsync/http-api`` "Error Body": ``{"errors": [{"code", "message"}]}``."""
    return Reply(status, {"errors": [{"code": code, "message": message}]})


def events_error(status: int, message: str) -> Reply:
    """``developers/server/http`` "Response Body": ``{"errors": [{"code", "message"}]}``."""
    return Reply(status, {"errors": [{"code": "BAD_REQUEST" if status == 400 else "ERROR", "message": message}]})


def profile_error(status: int, code: str, message: str) -> Reply:
    """The Profile API documents statuses but no error body (docs silent); the sandbox uses IDSync's shape."""
    return Reply(status, {"errors": [{"code": code, "message": message}]})


def api_error(api: str, status: int, code: str, message: str) -> Reply:
    """An error in the shape ``api`` uses."""
    if api == "dsr":
        return dsr_error(status, message, reason=code)
    if api == "identity":
        return identity_error(status, code, message)
    if api == "profile":
        return profile_error(status, code, message)
    return events_error(status, message)


def too_many_requests(api: str, exceeded: str, retry_after: float | None) -> Reply:
    """429 with ``X-mp-rate-limit-exceeded`` (and ``Retry-After`` for speed limits)."""
    reply = api_error(api, 429, "TOO_MANY_REQUESTS" if api != "dsr" else "TooManyRequestsException",
                      "Too many requests: the rate limit was exceeded.")
    reply.headers["X-mp-rate-limit-exceeded"] = exceeded
    if retry_after is not None:
        reply.headers["Retry-After"] = retry_after_header(retry_after)
    return reply


def server_error(status: int) -> Reply:
    """An injected 5xx (no body documented; a short JSON one is given)."""
    return Reply(status, {"errors": [{"code": "INTERNAL_ERROR", "message": f"sandbox fault: HTTP {status}"}]})
