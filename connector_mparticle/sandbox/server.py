"""A sandbox's lifecycle: bind (optionally with TLS), serve in background threads, tick the clock, shut down.

:class:`Sandbox` is what callers hold. It runs the HTTP pipeline over a :class:`SandboxContext` and offers the
admin API's typed methods by delegating to the :class:`SandboxAdmin` client it holds (``sb.admin``).
"""

from __future__ import annotations

import selectors
import socket
import socketserver
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from connector_mparticle.sandbox.admin_client import SandboxAdmin
from connector_mparticle.sandbox.context import SandboxContext
from connector_mparticle.sandbox.instance_config import SandboxConfig
from connector_mparticle.sandbox.pipeline import SandboxHTTPServer
from connector_mparticle.sandbox.pki import SandboxPKI, default_pki
from connector_mparticle.sandbox.workspace import OAUTH_CAPABLE

__all__ = ["Sandbox", "Serving"]

P = ParamSpec("P")
R = TypeVar("R")


class _ViaAdmin(Generic[P, R]):
    """A method of :class:`Sandbox` that calls the same method of its admin client (typed like it)."""

    def __init__(self, method: Callable[Concatenate[SandboxAdmin, P], R]) -> None:
        self._name = method.__name__
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, owner: None, kind: type[Any]) -> _ViaAdmin[P, R]: ...

    @overload
    def __get__(self, owner: Sandbox, kind: type[Any]) -> Callable[P, R]: ...

    def __get__(self, owner: Sandbox | None, kind: type[Any]) -> _ViaAdmin[P, R] | Callable[P, R]:
        if owner is None:
            return self
        method: Callable[P, R] = getattr(owner.admin, self._name)
        return method


class Serving:
    """Serves a socket server in a background thread until :meth:`stop`, which returns at once.

    ``serve_forever`` notices ``shutdown()`` only at its next poll, so every stop waits up to its poll interval;
    a test suite that starts and stops hundreds of servers spends minutes there. Here the serving thread waits on
    the listening socket and on a wake-up socket together, so a stop ends the wait immediately, and an idle server
    costs no CPU."""

    def __init__(self, server: socketserver.TCPServer, name: str) -> None:
        self._server = server
        self._server.timeout = 0  # handle_request is only called once the listening socket is ready
        self._wake, self._waker = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(self._wake, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in selector.select()]
                if self._wake in ready:
                    return
                self._server.handle_request()

    def stop(self) -> None:
        """Stop accepting connections, wait for the serving thread, and close the listening socket."""
        if self._thread.is_alive():
            self._waker.send(b"\0")
            self._thread.join()
        self._wake.close()
        self._waker.close()
        self._server.server_close()


def _connector_name(identity_type: str) -> str:
    """The connector configuration's name for one of the sandbox's identity types: mParticle's DSR and IDSync
    spelling (``other2``), where the sandbox keeps the Events API's (``other_id_2``)."""
    return identity_type.replace("other_id_", "other")


class Sandbox:
    """A local mParticle: ``with Sandbox() as sb:`` serves every API at ``sb.url`` until the block ends."""

    def __init__(self, config: SandboxConfig | None = None, *, pki: SandboxPKI | None = None,
                 **overrides: Any) -> None:
        self.config = replace(config or SandboxConfig(), **overrides)
        self.pki = pki or default_pki()
        self.ctx = SandboxContext(self.config, self.pki)
        self.url = ""
        self.ca_file = ""
        self.admin = SandboxAdmin("")
        self._serving: Serving | None = None
        self._clock: threading.Thread | None = None
        self._stop = threading.Event()
        self._ca_dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> Sandbox:
        """Bind, start serving in background threads, and return self."""
        server = SandboxHTTPServer((self.config.host, self.config.port), self.ctx)
        self._ca_dir = tempfile.TemporaryDirectory(prefix="mparticle-sandbox-ca-")
        ca_file = Path(self._ca_dir.name) / "sandbox-ca.pem"
        ca_file.write_bytes(self.pki.ca.cert_pem)
        if self.config.https:
            key_file = Path(self._ca_dir.name) / "tls.pem"
            key_file.write_bytes(self.pki.tls.key_pem + self.pki.tls.chain_pem)
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(key_file)
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        host, port = server.server_address[:2]
        scheme = "https" if self.config.https else "http"
        shown = "127.0.0.1" if host in ("127.0.0.1", "0.0.0.0") else str(host)  # noqa: S104
        self.url = f"{scheme}://{shown}:{port}"
        self.ctx.base_url = self.url
        self.ca_file = str(ca_file)
        self.admin = SandboxAdmin(self.url, verify=self.ca_file if self.config.https else True)
        self._serving = Serving(server, "sandbox-http")
        self._clock = threading.Thread(target=self._tick, name="sandbox-clock", daemon=True)
        self._clock.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(0.05):
            self.ctx.advance()

    def close(self) -> None:
        """Stop serving and remove temporary files."""
        self._stop.set()
        if self._serving is not None:
            self._serving.stop()
            self._serving = None
        if self._clock is not None:
            self._clock.join()
            self._clock = None
        self.ctx.close()
        self.admin.close()
        if self._ca_dir is not None:
            self._ca_dir.cleanup()
            self._ca_dir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connector_config(self, oauth: bool = False, **extra: Any) -> dict[str, Any]:
        """A connector configuration pointing every API at this sandbox (merged with ``extra``).

        With ``oauth=True`` the configuration uses OAuth client credentials for every API. mParticle documents
        Basic only for the DSR, Events and IDSync APIs, so this also makes the sandbox a workspace that accepts
        bearer tokens there (the ``oauth_apis`` setting); without it those APIs refuse the tokens."""
        if oauth:
            self.ctx.workspace.update({"oauth_apis": sorted(OAUTH_CAPABLE)})
        config: dict[str, Any] = self.config.credentials.connector_config(self.url, oauth=oauth)
        config["signature_trust_store"] = self.ca_file  # the sandbox CA issues its processor certificate
        strategy = self.ctx.workspace.current.identity  # tell the connector how this workspace resolves identities
        config["identity_strategy"] = {"login_ids": [_connector_name(t) for t in strategy.login_ids],
                                       "immutable_ids": [_connector_name(t) for t in strategy.immutable_ids]}
        if self.config.https:
            config["trust_store"] = self.ca_file
        config.update(extra)
        return config

    # The admin API, by delegation to ``self.admin`` (typed like SandboxAdmin's methods).
    credentials = _ViaAdmin(SandboxAdmin.credentials)
    seed_profile = _ViaAdmin(SandboxAdmin.seed_profile)
    profile = _ViaAdmin(SandboxAdmin.profile)
    find_profiles = _ViaAdmin(SandboxAdmin.find_profiles)
    dsrs = _ViaAdmin(SandboxAdmin.dsrs)
    dsr = _ViaAdmin(SandboxAdmin.dsr)
    force_status = _ViaAdmin(SandboxAdmin.force_status)
    limits = _ViaAdmin(SandboxAdmin.limits)
    set_limits = _ViaAdmin(SandboxAdmin.set_limits)
    faults = _ViaAdmin(SandboxAdmin.faults)
    set_faults = _ViaAdmin(SandboxAdmin.set_faults)
    clear_faults = _ViaAdmin(SandboxAdmin.clear_faults)
    durations = _ViaAdmin(SandboxAdmin.durations)
    set_durations = _ViaAdmin(SandboxAdmin.set_durations)
    workspace = _ViaAdmin(SandboxAdmin.workspace)
    set_workspace = _ViaAdmin(SandboxAdmin.set_workspace)
    shapes = _ViaAdmin(SandboxAdmin.shapes)
    set_shapes = _ViaAdmin(SandboxAdmin.set_shapes)
    ignored_consent = _ViaAdmin(SandboxAdmin.ignored_consent)
    request_log = _ViaAdmin(SandboxAdmin.request_log)
    clear_log = _ViaAdmin(SandboxAdmin.clear_log)
    callbacks = _ViaAdmin(SandboxAdmin.callbacks)
    stats = _ViaAdmin(SandboxAdmin.stats)
    expire_tokens = _ViaAdmin(SandboxAdmin.expire_tokens)
    revoke_tokens = _ViaAdmin(SandboxAdmin.revoke_tokens)
    ca_pem = _ViaAdmin(SandboxAdmin.ca_pem)
    reset = _ViaAdmin(SandboxAdmin.reset)
