"""IDSync's other two ways to authenticate (``developers/idsync/http-api``, "Authentication"; summarised in
``shared/reference/mparticle-api.md`` section 3).

**HMAC-based digest**, which "should be used by all clients of the Identity API": the platform key in
``x-mp-key``, the current date in ISO 8601 (``20170712T224127Z``) in ``Date``, and in ``x-mp-signature`` the
hex-encoded HMAC-SHA256, keyed with the UTF-8 bytes of the platform secret, of::

    METHOD + "\\n" + DATE + "\\n" + PATH + BODY

(``POST``, the ``Date`` header as sent, the request path such as ``/v1/identify`` followed at once by the raw
body). Docs silent: the case of the hex digits (either is accepted), whether the path includes a query string
(with or without it is accepted) and how far the date may be from now (not checked).

**API key only** (``x-mp-key`` alone): "only selectively enabled - and is disabled by default"; the workspace
setting ``idsync_key_only`` enables it.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from connector_mparticle.sandbox.calls import Call
from connector_mparticle.sandbox.instance_config import SandboxCredentials

__all__ = ["sign", "verify"]


def sign(secret: str, method: str, date: str, path: str, body: bytes) -> str:
    """The ``x-mp-signature`` of a request."""
    message = f"{method}\n{date}\n{path}".encode() + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _iso_8601(value: str) -> bool:
    """Whether ``value`` is an ISO 8601 date-time, basic (``20170712T224127Z``) or extended."""
    for form in ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S%z"):
        try:
            datetime.strptime(value, form)
        except ValueError:
            continue
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value


def verify(call: Call, credentials: SandboxCredentials, key_only_allowed: bool) -> bool:
    """Whether ``call``, which carries ``x-mp-key``, proves the input (platform) key by HMAC or, where the
    workspace allows it, by the key alone."""
    key = call.headers.get("x-mp-key") or ""
    if not hmac.compare_digest(key.encode(), credentials.input_key.encode()):
        return False
    signature = (call.headers.get("x-mp-signature") or "").strip().lower()
    if not signature:
        return key_only_allowed
    date = (call.headers.get("Date") or "").strip()
    if not _iso_8601(date):
        return False
    paths = [call.path] + ([f"{call.path}?{call.query_string}"] if call.query_string else [])
    return any(hmac.compare_digest(signature, sign(credentials.input_secret, call.method, date, path, call.body))
               for path in paths)
