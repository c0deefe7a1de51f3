"""One configured connection to mParticle: settings, clients, throttle, redaction; cached per configuration.

Hooks receive the configuration on every call. Building clients each time would lose the OAuth token and
the throttle's memory, so instances are kept per configuration fingerprint (a hash; secrets are not kept
anywhere else) for the life of the process.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import requests

import connector_mparticle
from connector_mparticle.events import EventsClient
from connector_mparticle.identity import IdentityClient
from connector_mparticle.oauth import ClientCredentials
from connector_mparticle.opendsr import OpenDsrClient
from connector_mparticle.settings import AuthSettings, Settings, config_fingerprint, parse_settings
from connector_mparticle.throttle import Throttle
from connector_mparticle.transport import ApiClient
from dsr_framework.redact import RedactingLogger, Redactor

__all__ = ["MParticleConnector", "connector_for"]

_CACHE: OrderedDict[str, MParticleConnector] = OrderedDict()
_CACHE_SIZE = 16
_cache_lock = threading.Lock()
USER_AGENT = f"connector-mparticle/{connector_mparticle.__version__} (+privacy requests)"


class MParticleConnector:
    """Clients for the DSR, Identity and Events APIs, sharing one throttle and one redactor."""

    def __init__(self, settings: Settings, throttle: Throttle | None = None) -> None:
        self.settings = settings
        self.redactor = Redactor(settings.secrets())
        self.log = RedactingLogger(logging.getLogger("connector_mparticle"), self.redactor)
        self.throttle = throttle or Throttle.build(
            {api: settings.limit(api) for api in ("dsr", "dsr_submit", "identity", "events")},
            settings.target_share, settings.throttle_backend, settings.sqlite_path, settings.redis_url,
            keys=budget_keys(settings))
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.trust_env = False  # no proxies or netrc credentials picked up from the environment
        verify: bool | str = settings.trust_store or True
        timeout = (settings.connect_timeout, settings.read_timeout)

        def client(api: str, base_url: str, auth: AuthSettings) -> ApiClient:
            auth_object: requests.auth.AuthBase
            if auth.kind == "basic":
                auth_object = requests.auth.HTTPBasicAuth(auth.key, auth.secret)
            else:
                auth_object = ClientCredentials(api, auth.token_url, auth.client_id, auth.client_secret,
                                                auth.audience, timeout=timeout, verify=verify)
            return ApiClient(api, base_url, auth_object, self.session, self.throttle, self.log, timeout=timeout,
                             max_retry_seconds=settings.max_retry_seconds,
                             max_retry_after_seconds=settings.max_retry_after_seconds, verify=verify)

        self.dsr = OpenDsrClient(client("dsr", settings.dsr_url, settings.dsr_auth))
        events_http = client("events", settings.events_url, settings.input_auth)
        identity_http = client("identity", settings.identity_url, settings.input_auth)
        if isinstance(events_http.auth, ClientCredentials):  # one token serves both input APIs
            identity_http.auth = events_http.auth
        self.events = EventsClient(events_http)
        self.identity = IdentityClient(identity_http, settings.environment)

    def __repr__(self) -> str:
        return f"MParticleConnector(pod={self.settings.pod!r}, dsr={self.settings.dsr_url!r})"

    def allowed_download_hosts(self) -> set[str]:
        """Hosts a results_url may point at: mParticle's API hosts, configured overrides, and extras."""
        from connector_mparticle.settings import manifest

        return set(manifest().egress_hosts) | self.settings.api_hosts() | set(self.settings.download_allowed_hosts)

    def close(self) -> None:
        self.session.close()
        self.throttle.close()


def budget_keys(settings: Settings) -> dict[str, str]:
    """Names of the shared budgets. mParticle limits DSR calls per workspace and Events/Identity per input's
    account, so workers with the same credentials share a budget and other workspaces get their own. The name
    holds a hash of the key (or OAuth client id), never the key itself."""
    def scope(auth: AuthSettings) -> str:
        return hashlib.sha256((auth.key or auth.client_id).encode()).hexdigest()[:16]

    dsr, inputs = scope(settings.dsr_auth), scope(settings.input_auth)
    return {"dsr": f"mparticle:{dsr}:dsr", "dsr_submit": f"mparticle:{dsr}:dsr_submit",
            "events": f"mparticle:{inputs}:events", "identity": f"mparticle:{inputs}:identity"}


def connector_for(config: Mapping[str, Any]) -> MParticleConnector:
    """The cached connector for ``config`` (validated; :class:`ConfigurationError` lists every problem).

    A configuration seen before is found by its fingerprint without validating it again: hooks receive the
    same configuration on every call."""
    key = config_fingerprint(config)
    with _cache_lock:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    settings = parse_settings(config)
    with _cache_lock:
        found = _CACHE.get(key)
        if found is not None:
            return found
        connector = MParticleConnector(settings)
        _CACHE[key] = connector
        while len(_CACHE) > _CACHE_SIZE:
            _, old = _CACHE.popitem(last=False)
            old.close()
        return connector
