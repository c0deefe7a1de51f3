"""One session policy for every HTTP call the connector makes, including OAuth token fetches and the
processor-certificate fetches of callback verification.

* **No redirects, ever.** ``get_redirect_target`` answers "none", so neither ``requests`` nor
  requests-oauthlib (which follows redirects by default) can carry a request, its body (a client secret)
  or its credentials to another host. Callers that must follow one (results downloads) do it themselves,
  re-checking every hop against the URL policy.
* **Nothing from the environment** (``trust_env = False``): no proxies, no ``.netrc`` credentials.
* **TLS always verified**, against the configured trust store or certifi; ``verify=False`` is refused.
* **No TLS key log.** ``ssl.create_default_context`` and urllib3's ``create_urllib3_context`` both honour
  ``SSLKEYLOGFILE`` (writing every session key to that file, which decrypts the traffic, credentials included).
  The session builds its own context (:func:`tls_context`) from ``ssl.SSLContext(PROTOCOL_TLS_CLIENT)``, which
  reads nothing from the environment, and hands it to every connection pool, so urllib3 never makes one.
* **No cookies** kept between requests.
* **Deadlines enforced at the socket** (:mod:`connector_mparticle.http.deadline`): every timeout is capped
  by the time the hook call has left, and every socket is registered so it can be shut down when that
  time is up. A host name is resolved within that time too: ``getaddrinfo`` runs before any socket exists
  and no timeout reaches it (a silent resolver holds it for the resolver's whole retry schedule), so it runs
  in a worker thread that the call waits for only up to its connect timeout; a lookup that takes longer is
  a connect timeout (retried, then "try again later"), and the worker is left to finish on its own.
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import logging
import os
import socket
import ssl
import threading
from typing import Any, cast

import requests
from requests.adapters import HTTPAdapter
from requests_oauthlib import OAuth2Session
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from connector_mparticle.errors import ConfigurationError
from connector_mparticle.http.deadline import current
from dsr_framework.redact import RedactingFilter, Redactor

__all__ = ["HardenedSession", "TokenSession", "guard_library_logs", "tls_context", "unguard_library_logs"]

#: Libraries that log request bodies, headers or tokens at DEBUG.
LIBRARY_LOGGERS = ("requests_oauthlib", "oauthlib", "urllib3", "requests")


def _watch(sock: Any) -> None:
    deadline = current()
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _Quiet:
    """``http.client`` prints every request and answer (headers, bodies: credentials and tokens) to stdout when
    ``HTTPConnection.debuglevel`` is set, as the requests documentation shows how to; that print bypasses logging
    and its redacting filters. The connector's own connections never print: the class attribute is pinned here,
    whatever a process sets on ``http.client.HTTPConnection``, and a value set on an instance is ignored."""

    @property
    def debuglevel(self) -> int:
        return 0

    @debuglevel.setter
    def debuglevel(self, value: int) -> None:
        pass  # set_debuglevel (and any code) may assign it: never anything but 0 here


def _numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _lookup(host: str, port: int, wait: float) -> list[str] | None:
    """The addresses of ``host``, resolved in a worker thread waited for at most ``wait`` seconds; None when the
    lookup took longer (the worker is left to end on its own: no timeout can interrupt ``getaddrinfo``)."""
    found: dict[str, Any] = {}
    done = threading.Event()

    def resolve() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=resolve, name="connector-mparticle-dns", daemon=True)
    worker.start()
    if not done.wait(wait):
        return None
    worker.join()
    if "error" in found:
        raise found["error"]
    return list(dict.fromkeys(str(info[4][0]) for info in found["infos"]))


class _Watched:
    """urllib3's connection, its host name resolved within the call's deadline and its socket watched by it."""

    _dns_host: str
    port: int
    timeout: Any
    sock: Any

    def _new_conn(self) -> Any:
        running = current()
        if running is None or _numeric(self._dns_host):
            sock = super()._new_conn()  # type: ignore[misc]
        else:
            wait = running.cap(self.timeout if isinstance(self.timeout, (int, float)) else running.remaining())
            sock = self._connect_to(self._resolved(wait))
        _watch(sock)  # before TLS: a handshake that drips is cut off too
        return sock

    def _resolved(self, wait: float) -> list[str]:
        try:
            addresses = _lookup(self._dns_host, self.port, wait)
        except OSError as exc:  # as urllib3 reports a failed lookup of its own
            raise NewConnectionError(cast(HTTPConnection, self),
                                     f"the host name could not be resolved ({type(exc).__name__})") from None
        if addresses is None:
            raise ConnectTimeoutError(cast(HTTPConnection, self),
                                      f"resolving {self._dns_host} took longer than {wait:.1f}s")
        return addresses

    def _connect_to(self, addresses: list[str]) -> Any:
        """A socket to the first of ``addresses`` that accepts (urllib3 connects to an address without a lookup;
        the host name is put back at once, for TLS and the Host header)."""
        name, error = self._dns_host, None
        try:
            for address in addresses:
                self._dns_host = address
                try:
                    return super()._new_conn()  # type: ignore[misc]
                except (NewConnectionError, ConnectTimeoutError) as exc:
                    error = exc
        finally:
            self._dns_host = name
        raise error or NewConnectionError(cast(HTTPConnection, self), "the host name has no address")

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)  # a kept-alive connection serving a new call
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Quiet, _Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Quiet, _Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """A client TLS context that verifies certificates and host names against ``verify`` (a CA file or folder, or
    True for certifi), TLS 1.2 or later, and never writes a key log whatever the environment says."""
    if verify is False:
        raise ValueError("TLS verification cannot be turned off")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname; reads no environment
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.keylog_filename = None  # type: ignore[assignment]  # stated, not assumed: no key log
    try:
        if verify is True:
            import certifi

            context.load_verify_locations(cafile=certifi.where())
        elif os.path.isdir(verify):
            context.load_verify_locations(capath=verify)
        else:
            context.load_verify_locations(cafile=verify)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigurationError(f"trust_store cannot be read as PEM certificates ({type(exc).__name__})") from None
    return context


class _DeadlineAdapter(HTTPAdapter):
    """An adapter whose connections are watched by the current deadline and whose timeouts it caps, over TLS
    from the session's own context."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context  # before HTTPAdapter.__init__, which builds the pool manager
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **{**kwargs, "ssl_context": self._context})
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: bool | str = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        if verify is False:
            raise ValueError("TLS verification cannot be turned off")
        deadline = current()
        if deadline is not None:
            deadline.check()
            connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
            timeout = (deadline.cap(connect if connect is not None else deadline.remaining()),
                       deadline.cap(read if read is not None else deadline.remaining()))
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)


class _Hardened:
    """The policy, as a mixin for ``requests.Session`` and requests-oauthlib's ``OAuth2Session``."""

    def _harden(self, verify: bool | str) -> None:
        session: Any = self
        session.trust_env = False
        session.verify = verify
        session.max_redirects = 0
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = _DeadlineAdapter(tls_context(verify))
        session.mount("https://", adapter)
        session.mount("http://", adapter)

    def get_redirect_target(self, response: requests.Response) -> None:
        """Never follow a redirect: the 3xx response itself is returned to the caller."""
        return None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False
        if kwargs.get("verify") is False:
            raise ValueError("TLS verification cannot be turned off")
        response: requests.Response = super().request(method, url, *args, **kwargs)  # type: ignore[misc]
        return response


class HardenedSession(_Hardened, requests.Session):  # type: ignore[misc]  # request() takes the same arguments
    """A ``requests.Session`` under the connector's policy (see the module docstring)."""

    def __init__(self, verify: bool | str = True, user_agent: str | None = None) -> None:
        super().__init__()
        self._harden(verify)
        if user_agent:
            self.headers["User-Agent"] = user_agent


class TokenSession(_Hardened, OAuth2Session):  # type: ignore[misc]
    """requests-oauthlib's ``OAuth2Session`` under the same policy (its token fetch follows redirects by
    default, which would carry the client secret to whatever host a redirect names)."""

    def __init__(self, verify: bool | str = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._harden(verify)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        """Streamed, so a response hook reads the token answer with a size cap (requests-oauthlib would read it
        whole); the hook leaves the checked copy for requests-oauthlib to parse."""
        kwargs["stream"] = True
        return super().request(method, url, *args, **kwargs)


def guard_library_logs(redactor: Redactor) -> None:
    """Redact what HTTP and OAuth libraries log (request bodies, headers, tokens at DEBUG) with ``redactor``.

    A filter on a logger applies only to records created on that very logger, so every logger already
    created under those libraries gets one (they are created when the modules are imported, which the
    connector has done by the time it calls this). The filter is added once per logger and reads the
    redactor it was given, which connectors keep adding their secrets and tokens to.
    """
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or not name.startswith(LIBRARY_LOGGERS):
            continue
        if not any(isinstance(f, RedactingFilter) and f.redactor is redactor for f in logger.filters):
            logger.addFilter(RedactingFilter(redactor))


def unguard_library_logs(redactor: Redactor) -> None:
    """Remove the filters :func:`guard_library_logs` added for ``redactor`` (when a connector is closed)."""
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            for found in [f for f in logger.filters if isinstance(f, RedactingFilter) and f.redactor is redactor]:
                logger.removeFilter(found)
