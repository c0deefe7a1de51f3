"""OAuth 2.0 client credentials through requests-oauthlib: a cached token, fetched again shortly before it
expires and once after a 401 (mParticle tokens last 8 hours and cannot be revoked, but clocks drift).

requests-oauthlib has no automatic refresh for client credentials (``auto_refresh_url`` posts a refresh-token
grant, which fails), so expiry is handled here by calling ``fetch_token`` again.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error
from requests_oauthlib import OAuth2Session

from connector_mparticle.errors import AuthenticationError, RetryLaterError

__all__ = ["ClientCredentials"]

#: When a token response carries no ``expires_in``, assume this lifetime and rely on the 401 refetch.
ASSUMED_LIFETIME_SECONDS = 3600.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_env_lock = threading.Lock()


@contextlib.contextmanager
def _allow_http_for_loopback(url: str) -> Iterator[None]:
    """oauthlib refuses plain http unless OAUTHLIB_INSECURE_TRANSPORT is set; allow it for loopback only."""
    if urlsplit(url).scheme == "https" or urlsplit(url).hostname not in _LOOPBACK:
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


class ClientCredentials(requests.auth.AuthBase):
    """``requests`` auth that attaches a bearer token from the client-credentials grant."""

    def __init__(self, api: str, token_url: str, client_id: str, client_secret: str, audience: str, *,
                 timeout: tuple[float, float], verify: bool | str, leeway: float = 60.0) -> None:
        self.api = api
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._audience = audience
        self._timeout = timeout
        self._verify = verify
        self._leeway = leeway
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.fetches = 0

    def __repr__(self) -> str:
        return f"ClientCredentials(api={self.api!r}, client_id={self._client_id!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def token(self) -> str:
        """A valid access token, fetched if there is none or it expires within the leeway."""
        with self._lock:
            if self._token is None or time.time() >= self._expires_at - self._leeway:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Forget the token (after a 401) so the next request fetches a new one."""
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        session = OAuth2Session(client=BackendApplicationClient(client_id=self._client_id))
        try:
            with _allow_http_for_loopback(self._token_url):
                token: dict[str, Any] = session.fetch_token(
                    token_url=self._token_url, client_id=self._client_id, client_secret=self._client_secret,
                    include_client_id=True, audience=self._audience, timeout=self._timeout, verify=self._verify)
        except OAuth2Error as exc:
            raise AuthenticationError(
                f"the OAuth token endpoint refused the client id and secret for the {self.api} API "
                f"({exc.error})", api=self.api) from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise RetryLaterError(f"the OAuth token endpoint could not be reached ({type(exc).__name__})",
                                  api=self.api) from exc
        except (requests.RequestException, ValueError) as exc:
            raise AuthenticationError(f"the OAuth token endpoint gave an unusable answer ({type(exc).__name__})",
                                      api=self.api) from exc
        finally:
            session.close()
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise AuthenticationError("the OAuth token endpoint returned no access token", api=self.api)
        lifetime = token.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, (int, float)) and lifetime > 0 else ASSUMED_LIFETIME_SECONDS
        self._token = access
        self._expires_at = time.time() + seconds
        self.fetches += 1
