"""One configured connection to mParticle: settings, clients, throttle, redaction; cached per configuration.

Hooks receive the configuration on every call. Building clients each time would lose the OAuth token and
the throttle's memory, so instances are kept per configuration fingerprint (a hash; secrets are not kept
anywhere else) for the life of the process. A new configuration's connector is built inside the hook call's
deadline (its throttle store may be slow to open) and outside the cache's lock: one configuration whose store
hangs holds up only the calls for that configuration, and those only until their own deadlines.

Each API gets its own credential object, bound to that API's origin: the same input key and secret serve the
Events and Identity APIs, but each copy goes only to its own host. One OAuth token source per client serves
every API configured with that client.
"""

from __future__ import annotations

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

__all__ = ["MParticleConnector", "connected", "connector_for"]

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
        self._tokens: dict[tuple[str, str], TokenSource] = {}
        self._signatures: ProcessorSignatures | None = None
        self._signatures_lock = threading.Lock()
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
        key = (auth.token_url, auth.client_id)
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
    within ``timeouts.total_seconds`` when it is new (see :func:`connected`)."""
    with connected(config, "setting up the connection") as conn:
        return conn


@contextmanager
def connected(config: Mapping[str, Any], what: str) -> Iterator[MParticleConnector]:
    """The cached connector for ``config``, with the hook call's deadline (``timeouts.total_seconds``, named
    ``what``) running from now: a connector built for a new configuration is built inside that deadline, so the
    whole call, building included, is bounded by it.

    A configuration seen before is found by its fingerprint without validating it again: hooks receive the
    same configuration on every call."""
    key = config_fingerprint(config)
    found = _cached(key)
    settings = found.settings if found is not None else parse_settings(config)
    with bounded(settings.timeouts.total_seconds, what):
        yield found if found is not None else _built(key, settings)


def _cached(key: str) -> MParticleConnector | None:
    with _cache_lock:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
        return found


def _built(key: str, settings: Settings) -> MParticleConnector:
    """The connector for ``settings``, built once however many calls ask at the same time; a call waits for
    another's build only until its own deadline."""
    with _cache_lock:
        gate = _building.setdefault(key, threading.Lock())
    with held(gate):
        try:
            found = _cached(key)
            return found if found is not None else _insert(key, MParticleConnector(settings))
        finally:  # the builder forgets the gate: later callers find the connector, or build afresh
            with _cache_lock:
                if _building.get(key) is gate:
                    del _building[key]


def _insert(key: str, connector: MParticleConnector) -> MParticleConnector:
    """Cache ``connector`` (or keep the one another call cached meanwhile), evicting the least recently used."""
    with _cache_lock:
        kept = _CACHE.setdefault(key, connector)
        evicted = [_CACHE.popitem(last=False)[1] for _ in range(len(_CACHE) - _CACHE_SIZE)]
    for old in ([connector] if kept is not connector else []) + evicted:
        old.close()
    return kept
