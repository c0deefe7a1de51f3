"""One configured connection to mParticle: settings, clients, throttle, redaction; cached per configuration.

Hooks receive the configuration on every call. Building clients each time would lose the OAuth token and
the throttle's memory, so instances are kept per configuration fingerprint (a hash; secrets are not kept
anywhere else) for the life of the process. A new configuration's connector is built inside the hook call's
deadline (its throttle store may be slow to open) and outside the cache's lock: one configuration whose store
hangs holds up only the calls for that configuration, and those only until their own deadlines.

Each API gets its own credential object, bound to that API's origin: the same input key and secret serve the
Events and Identity APIs, but each copy goes only to its own host. One OAuth token source per client serves
every API configured with that client and audience.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import connector_mparticle
from connector_mparticle.api.events import EventsClient
from connector_mparticle.api.identity import IdentityClient
from connector_mparticle.api.opendsr import OpenDsrClient
from connector_mparticle.api.profile import ProfileClient
from connector_mparticle.api.signatures import ProcessorSignatures
from connector_mparticle.http.auth import BasicAuth, BearerAuth, OriginAuth, TokenSource
from connector_mparticle.http.deadline import bounded, held
from connector_mparticle.http.session import HardenedSession, guard_library_logs, unguard_library_logs
from connector_mparticle.http.throttle import Throttle
from connector_mparticle.http.transport import ApiClient
from connector_mparticle.settings import AuthSettings, Settings, config_fingerprint, parse_settings
from dsr_framework.redact import RedactingLogger, Redactor

__all__ = ["MParticleConnector", "connected", "connector_for", "connector_in_use"]

_CACHE: OrderedDict[str, MParticleConnector] = OrderedDict()
_CACHE_SIZE = 16
_cache_lock = threading.Lock()  #: held only to read or change the cache, never while building
_building: dict[str, threading.Lock] = {}  #: one lock per configuration being built (under _cache_lock)
USER_AGENT = f"connector-mparticle/{connector_mparticle.__version__} (+privacy requests)"


class MParticleConnector:
    """Clients for the DSR, Identity and Events APIs, sharing one session, throttle and redactor."""

    def __init__(self, settings: Settings, throttle: Throttle | None = None) -> None:
        self.settings = settings
        self.redactor = Redactor(settings.secrets())
        guard_library_logs(self.redactor)
        self.log = RedactingLogger(logging.getLogger("connector_mparticle"), self.redactor)
        apis = ("dsr", "dsr_submit", "identity", "events", *(("profile",) if settings.profile else ()))
        self.throttle = throttle or Throttle.build(
            {api: settings.limit(api) for api in apis},
            settings.throttle.target_share, settings.throttle.backend, settings.throttle.sqlite_path,
            settings.throttle.redis_url,
            keys=budget_keys(settings))
        self.session = HardenedSession(settings.verify, USER_AGENT)
        self._tokens: dict[tuple[str, str, str], TokenSource] = {}
        self._signatures: ProcessorSignatures | None = None
        self._signatures_lock = threading.Lock()
        self._calls = 0  #: hook calls using this connector now (guarded by the cache's lock)
        self._retired = False  #: dropped from the cache: closed when the last call ends
        download_policy = settings.download_policy()

        def client(api: str, base_url: str, auth: AuthSettings) -> ApiClient:
            return ApiClient(api, base_url, self._auth(api, auth), self.session, self.throttle, self.log,
                             self.redactor, timeout=(settings.timeouts.connect, settings.timeouts.read),
                             max_retry_seconds=settings.throttle.max_retry_seconds,
                             max_retry_after_seconds=settings.throttle.max_retry_after_seconds,
                             download_policy=download_policy)

        self.dsr = OpenDsrClient(client("dsr", settings.dsr_url, settings.dsr_auth))
        self.events = EventsClient(client("events", settings.events_url, settings.input_auth))
        self.identity = IdentityClient(client("identity", settings.identity_url, settings.input_auth),
                                       settings.environment)
        self.profile: ProfileClient | None = None
        if settings.profile is not None:
            self.profile = ProfileClient(client("profile", settings.profile.base_url, settings.profile.auth),
                                         settings.profile, settings.environment)

    @property
    def signatures(self) -> ProcessorSignatures:
        """The verifier for mParticle's signed answers, built on first use (it loads the trust anchors)."""
        with self._signatures_lock:
            if self._signatures is None:
                self._signatures = ProcessorSignatures.for_settings(self.settings)
            return self._signatures

    def _auth(self, api: str, auth: AuthSettings) -> OriginAuth:
        """A credential for ``api`` that goes only to that API's origin."""
        origin = self.settings.origin(api)
        if auth.kind == "basic":
            return BasicAuth(origin, auth.key, auth.secret)
        key = (auth.token_url, auth.client_id, auth.audience)  # a token for one audience is not sent to another
        if key not in self._tokens:
            self._tokens[key] = TokenSource(auth.token_url, auth.client_id, auth.client_secret, auth.audience,
                                            verify=self.settings.verify, redactor=self.redactor, api=api)
        return BearerAuth(origin, self._tokens[key])

    def __repr__(self) -> str:
        return f"MParticleConnector(pod={self.settings.pod!r}, dsr={self.settings.dsr_url!r})"

    def close(self) -> None:
        self.session.close()
        self.throttle.close()
        unguard_library_logs(self.redactor)


def budget_keys(settings: Settings) -> dict[str, str]:
    """Names of the shared budgets. mParticle limits DSR calls per workspace and Events/Identity per input's
    account, so workers with the same credentials share a budget and other workspaces get their own. The name
    holds a hash of the key (or OAuth client id), never the key itself."""
    def scope(auth: AuthSettings) -> str:
        return hashlib.sha256((auth.key or auth.client_id).encode()).hexdigest()[:16]

    dsr, inputs = scope(settings.dsr_auth), scope(settings.input_auth)
    keys = {"dsr": f"mparticle:{dsr}:dsr", "dsr_submit": f"mparticle:{dsr}:dsr_submit",
            "events": f"mparticle:{inputs}:events", "identity": f"mparticle:{inputs}:identity"}
    if settings.profile is not None:  # 15 requests/s for the whole account: one budget per OAuth client
        keys["profile"] = f"mparticle:{scope(settings.profile.auth)}:profile"
    return keys


def connector_for(config: Mapping[str, Any]) -> MParticleConnector:
    """The cached connector for ``config`` (validated; :class:`ConfigurationError` lists every problem), built
    within ``timeouts.total_seconds`` when it is new. Not held: a hook call uses :func:`connected`."""
    key = config_fingerprint(config)
    found = _cached(key, hold=False)
    if found is not None:
        return found
    settings = parse_settings(config)
    with bounded(settings.timeouts.total_seconds, "setting up the connection"):
        return _built(key, settings, hold=False)


@contextmanager
def connected(config: Mapping[str, Any], what: str) -> Iterator[MParticleConnector]:
    """The cached connector for ``config``, with the hook call's deadline (``timeouts.total_seconds``, named
    ``what``) running from now, held for the ``with`` block.

    A connector built for a new configuration is built inside that deadline, so the whole call, building
    included, is bounded by it; and outside the cache's lock, so one configuration's slow build holds up no other.
    A configuration seen before is found by its fingerprint without validating it again: hooks receive the same
    configuration on every call. When the cache drops the connector meanwhile (other configurations' calls filled
    it), it is closed only once the last call holding it has ended: closing it stops redacting what the HTTP and
    OAuth libraries log with its secrets, and closes its session, neither of which may happen under a call still
    sending them."""
    key = config_fingerprint(config)
    found = _cached(key, hold=True)
    connector = found
    try:
        settings = found.settings if found is not None else parse_settings(config)
        with bounded(settings.timeouts.total_seconds, what):
            if connector is None:
                connector = _built(key, settings, hold=True)
            yield connector
    finally:
        if connector is not None:
            _release(connector)


def connector_in_use(config: Mapping[str, Any]) -> contextlib.AbstractContextManager[MParticleConnector]:
    """:func:`connected` named for a hook call."""
    return connected(config, "the call")


def _release(connector: MParticleConnector) -> None:
    with _cache_lock:
        connector._calls -= 1
        done = connector._retired and connector._calls == 0
    if done:
        connector.close()


def _cached(key: str, hold: bool) -> MParticleConnector | None:
    with _cache_lock:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            found._calls += hold
        return found


def _built(key: str, settings: Settings, hold: bool) -> MParticleConnector:
    """The connector for ``settings``, built once however many calls ask at the same time; a call waits for
    another's build only until its own deadline."""
    with _cache_lock:
        gate = _building.setdefault(key, threading.Lock())
    with held(gate):
        try:
            found = _cached(key, hold)
            return found if found is not None else _insert(key, MParticleConnector(settings), hold)
        finally:  # the builder forgets the gate: later callers find the connector, or build afresh
            with _cache_lock:
                if _building.get(key) is gate:
                    del _building[key]


def _insert(key: str, connector: MParticleConnector, hold: bool) -> MParticleConnector:
    """Cache ``connector`` (or keep the one another call cached meanwhile), evicting the least recently used;
    an evicted connector is closed now, or by the last call still holding it."""
    closing = []
    with _cache_lock:
        kept = _CACHE.setdefault(key, connector)
        kept._calls += hold
        if kept is not connector:
            closing.append(connector)
        while len(_CACHE) > _CACHE_SIZE:
            _, old = _CACHE.popitem(last=False)
            old._retired = True
            if old._calls == 0:
                closing.append(old)
    for old in closing:
        old.close()
    return kept
