"""Credentials bound to the origin they belong to, attached at send time or not at all.

Every credential object knows its ``origin`` (from :mod:`connector_mparticle.http.urls`). ``requests``
calls it with the *prepared* request, after the URL has been parsed the way the connection will be opened;
it adds its ``Authorization`` header only when that request's origin is its own. So no code path (a
results download on another host, a redirect target, a misrouted call) can hand credentials elsewhere.

* :class:`BasicAuth`: HTTP Basic with a key and secret (mParticle's DSR, Events and Identity APIs).
* :class:`BearerAuth`: a bearer token from a :class:`TokenSource` (OAuth 2.0 client credentials, which
  mParticle documents for its Platform and Profile APIs).

``refresh()`` is what the transport calls after a 401/403: True when trying again with fresh credentials
could help (a new OAuth token), False when it cannot (a fixed key and secret).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import parse_qsl

import requests
import urllib3

from connector_mparticle.errors import (
    AuthenticationError,
    MParticleError,
    RejectedError,
    RetryLaterError,
    UnsafeResponseError,
)
from connector_mparticle.http.answers import Malformed, bounded_body, field_number, field_str, json_body, obj
from connector_mparticle.http.deadline import Deadline, current, held
from connector_mparticle.http.session import TokenSession
from connector_mparticle.http.urls import Origin, UrlRefused, origin_of
from dsr_framework.redact import Redactor

__all__ = ["BasicAuth", "BearerAuth", "OriginAuth", "TokenSource"]

#: When a token response carries no usable ``expires_in``, assume this lifetime and rely on the 401 refetch.
ASSUMED_LIFETIME_SECONDS = 3600.0
#: The longest lifetime believed: mParticle's tokens last 8 hours; a longer claim is cut to a day (the 401
#: refetch covers a token revoked earlier).
MAX_LIFETIME_SECONDS = 86_400.0
TOKEN_TIMEOUT = (5.0, 15.0)  #: mParticle: the first token request can take 1-3 s
MAX_TOKEN_ANSWER_BYTES = 64 * 1024  #: a token answer is a few hundred bytes (a JWT a few kilobytes)
#: RFC 6750 section 2.1 ``b64token``, of a length a real token has (mParticle's are JWTs).
ACCESS_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]{16,16384}=*")
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  #: RFC 6749 section 5.2 error codes, shortened
_WIRE_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException)


class OriginAuth(Protocol):
    """A credential that goes only to ``origin``."""

    origin: Origin

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest: ...

    def refresh(self) -> bool: ...


def _same_origin(request: requests.PreparedRequest, origin: Origin) -> bool:
    try:
        return origin_of(request.url or "") == origin
    except UrlRefused:
        return False


class BasicAuth(requests.auth.AuthBase):
    """HTTP Basic, added only to requests for ``origin``."""

    def __init__(self, origin: Origin, key: str, secret: str) -> None:
        self.origin = origin
        self._header = requests.auth._basic_auth_str(key, secret)

    def __repr__(self) -> str:
        return f"BasicAuth(origin={str(self.origin)!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if _same_origin(request, self.origin):
            request.headers["Authorization"] = self._header
        return request

    def refresh(self) -> bool:
        return False  # a key and secret do not change by asking again


class TokenSource:
    """OAuth 2.0 client-credentials tokens from one token endpoint, cached until shortly before they expire.

    The fetch goes through requests-oauthlib on a :class:`TokenSession` (no redirects, so the client
    secret reaches only ``token_url``'s origin, and a token is only ever taken from that endpoint), with the
    JSON body mParticle documents. Every token obtained is registered with ``redactor``, so it is hidden
    like a configured secret. requests-oauthlib has no refresh for this grant (``auto_refresh_url`` posts a
    refresh-token grant, which fails), so expiry is handled here by fetching again.
    """

    def __init__(self, token_url: str, client_id: str, client_secret: str, audience: str, *, verify: bool | str,
                 redactor: Redactor, api: str, leeway: float = 60.0) -> None:
        self.origin = origin_of(token_url)
        self.api = api
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._audience = audience
        self._verify = verify
        self._redactor = redactor
        self._leeway = leeway
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies this source: a token is minted for one client at one endpoint for one audience."""
        return (self._token_url, self._client_id, self._audience)

    def __repr__(self) -> str:
        return f"TokenSource(origin={str(self.origin)!r}, client_id={self._client_id!r})"

    def token(self) -> str:
        """A valid access token, fetched if there is none or it expires within the leeway. One fetch at a time;
        a call waits for another's fetch only until its own deadline."""
        with held(self._lock):
            if self._token is None or time.monotonic() >= self._expires_at - self._leeway:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Forget the token (after a 401) so the next request fetches a new one."""
        with held(self._lock):
            self._token = None

    def _fetch(self) -> None:
        token = self._request_token()  # read by _read_response: a checked token, a lifetime in range or none
        access = token.get("access_token")
        if not isinstance(access, str) or not ACCESS_TOKEN.fullmatch(access):
            raise RetryLaterError("the OAuth token endpoint gave an unusable answer (no access token)", api=self.api)
        self._token = access
        self._expires_at = time.monotonic() + (_lifetime(token.get("expires_in")) or ASSUMED_LIFETIME_SECONDS)
        self._redactor.register(access, rotating=True, source=self.key, expires_at=self._expires_at)

    def _request_token(self) -> dict[str, Any]:
        """The token endpoint's answer to a client-credentials grant; every failure translated."""
        from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error

        session = TokenSession(verify=self._verify, client=BackendApplicationClient(client_id=self._client_id))
        session.register_compliance_hook("access_token_request", _json_body)
        # A response hook runs inside the request, before requests-oauthlib logs the response at DEBUG.
        session.hooks["response"].append(self._read_response)
        deadline = current()  # the session caps every timeout by it
        try:
            with _insecure_transport_for(self.origin):
                token: dict[str, Any] = session.fetch_token(
                    token_url=self._token_url, client_id=self._client_id, client_secret=self._client_secret,
                    include_client_id=True, audience=self._audience, timeout=TOKEN_TIMEOUT)
        except MParticleError:
            raise  # _read_response's verdict on the answer, or the deadline
        except (OAuth2Error, *_WIRE_ERRORS, ValueError) as exc:
            raise self._token_error(exc, deadline) from exc
        except Exception as exc:  # whatever requests-oauthlib raises, the answer was not a token
            raise self._token_error(exc, deadline) from exc
        finally:
            session.close()
        return token

    def _token_error(self, exc: Exception, deadline: Deadline | None) -> MParticleError:
        """What a failed token request means for the caller: a refusal of the credentials is final; a certificate
        that does not verify is refused; anything else (the network, an answer that is not a token) is worth
        another attempt later."""
        from oauthlib.oauth2 import OAuth2Error

        if isinstance(exc, OAuth2Error):
            return AuthenticationError(f"the OAuth token endpoint refused the client id and secret for the {self.api} "
                                       f"API ({self._redactor.scrub(str(exc.error))[:64]})", api=self.api)
        if isinstance(exc, requests.exceptions.SSLError):  # a ConnectionError, but retrying cannot fix it
            return RejectedError("the OAuth token endpoint's TLS certificate could not be verified "
                                 f"({type(exc).__name__}); check trust_store", api=self.api)
        if deadline is not None and deadline.expired:
            return deadline.error()
        if isinstance(exc, _WIRE_ERRORS):
            return RetryLaterError(f"the OAuth token endpoint could not be reached ({type(exc).__name__})",
                                   api=self.api)
        return RetryLaterError(f"the OAuth token endpoint gave an unusable answer ({type(exc).__name__})",
                               api=self.api)

    def _read_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """Read the token endpoint's answer through the decoding layer and hand requests-oauthlib a clean copy.

        requests-oauthlib parses the raw answer itself and trusts it (``int(expires_in)`` of 1e999 overflows, a
        deep body recurses, a ``scope`` that is not text raises ``AttributeError``, an unrequested ``scope`` raises
        a ``Warning``), so the answer is read here, bounded, and replaced by a document holding only a checked
        ``access_token``, ``token_type`` and ``expires_in``. A redirect is refused, a 429 or 5xx is worth another
        attempt, a 4xx is a refusal, and any other answer that is not a token is worth another attempt. The token
        is registered with the redactor before anything can log it."""
        status = response.status_code
        if 300 <= status < 400:
            raise UnsafeResponseError("the OAuth token endpoint answered with a redirect, which is never followed "
                                      "(the client secret goes only to token_url)", api=self.api, status=status)
        if status == 429 or status >= 500:
            raise RetryLaterError(f"the OAuth token endpoint is not answering normally (HTTP {status})",
                                  api=self.api, status=status)
        deadline = current()
        try:
            raw = bounded_body(response, MAX_TOKEN_ANSWER_BYTES, check=deadline.check if deadline else lambda: None)
        except Malformed as exc:
            raise RetryLaterError(f"the OAuth token endpoint gave an unusable answer ({exc})", api=self.api) from None
        finally:
            response.close()
        if status < 300 and status != 200:  # not RFC 6749's 200, and not a refusal either
            raise RetryLaterError(f"the OAuth token endpoint gave an unusable answer (HTTP {status})", api=self.api,
                                  status=status)
        if status != 200:
            raise AuthenticationError(f"the OAuth token endpoint refused the client id and secret for the {self.api} "
                                      f"API (HTTP {status}{self._redactor.scrub(_error_code(raw))})", api=self.api,
                                      status=status)
        clean = self._token_document(raw)
        response._content = json.dumps(clean).encode()  # what requests-oauthlib reads (and logs at DEBUG)
        response._content_consumed = True  # type: ignore[attr-defined]  # so nothing reads the stream again
        return response

    def _token_document(self, raw: bytes) -> dict[str, Any]:
        """The fields of a token answer the connector uses, each checked; :class:`RetryLaterError` if it is not one."""
        try:
            body = obj(json_body(raw, max_bytes=MAX_TOKEN_ANSWER_BYTES, max_depth=4), "a token answer")
            access = field_str(body.get("access_token"), "an access_token", max_chars=16384, optional=False,
                               pattern=ACCESS_TOKEN)
            kind = field_str(body.get("token_type"), "a token_type", max_chars=32, pattern=_ERROR_CODE)
        except Malformed as exc:
            raise RetryLaterError(f"the OAuth token endpoint gave an unusable answer ({exc})", api=self.api) from None
        assert access is not None
        lifetime = _lifetime(body.get("expires_in"))
        # Hidden before anything can log it, for as long as it can be valid.
        self._redactor.register(access, rotating=True, source=self.key,
                                expires_at=time.monotonic() + (lifetime or ASSUMED_LIFETIME_SECONDS))
        clean: dict[str, Any] = {"access_token": access, "token_type": kind or "Bearer"}
        if lifetime is not None:
            clean["expires_in"] = int(lifetime)
        return clean


def _lifetime(value: Any) -> float | None:
    """``expires_in`` in seconds, at most :data:`MAX_LIFETIME_SECONDS`; None when it is not a positive number
    (``"3600"``, ``1e999``, ``NaN``, ``true``, ``10**400``: the assumed lifetime applies)."""
    seconds = field_number(value, 1, float("inf"))
    return None if seconds is None else min(seconds, MAX_LIFETIME_SECONDS)


def _error_code(raw: bytes) -> str:
    """``: error`` for an OAuth error answer whose ``error`` is a plain error code; nothing otherwise."""
    try:
        code = field_str(obj(json_body(raw, max_depth=4), "an error").get("error"), "an error", max_chars=64,
                         pattern=_ERROR_CODE)
    except Malformed:
        return ""
    return f": {code}" if code else ""


def _json_body(url: str, headers: dict[str, str],
               request: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """mParticle documents a JSON body for its token endpoint; requests-oauthlib writes a form body."""
    form = request.pop("data", {})
    fields = dict(parse_qsl(form)) if isinstance(form, str) else dict(form)
    return url, {**headers, "Content-Type": "application/json"}, {**request, "data": json.dumps(fields)}


_env_lock = threading.Lock()


@contextlib.contextmanager
def _insecure_transport_for(origin: Origin) -> Iterator[None]:
    """oauthlib refuses plain http unless OAUTHLIB_INSECURE_TRANSPORT is set: allow it for loopback only."""
    if origin.scheme != "http" or not origin.loopback:
        yield
        return
    with _env_lock:
        previous = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
            else:
                os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = previous


class BearerAuth(requests.auth.AuthBase):
    """A bearer token from ``source``, added only to requests for ``origin``."""

    def __init__(self, origin: Origin, source: TokenSource) -> None:
        self.origin = origin
        self.source = source

    def __repr__(self) -> str:
        return f"BearerAuth(origin={str(self.origin)!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if _same_origin(request, self.origin):
            request.headers["Authorization"] = f"Bearer {self.source.token()}"
        return request

    def refresh(self) -> bool:
        self.source.invalidate()
        return True
