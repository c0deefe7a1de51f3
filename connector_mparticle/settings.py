"""The connector's settings: the validated configuration, with the schema's defaults filled in, as types.

The credentials schema (the file ``manifest.yaml`` names) is the one source: it validates the configuration and
its ``default`` values are filled in by a jsonschema validator (both in :mod:`~connector_mparticle.settings_schema`,
whose public names are re-exported here), and :class:`Settings` is grouped as it is, one
frozen dataclass per section (:data:`SECTIONS`) whose fields are the section's property names. Adding a setting
is one schema edit plus the field and the code that uses it (a test fails when a field and the schema differ).
Hosts per pod live in :data:`POD_HOSTS`; mParticle's published limits live in ``manifest.yaml``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from connector_mparticle.errors import ConfigurationError
from connector_mparticle.http.urls import Origin, UrlPolicy, origin_of
from connector_mparticle.identities import DEFAULT_CATEGORIES
from connector_mparticle.settings_schema import credentials_schema, manifest, problems, with_defaults
from dsr_framework.validation import SchemaViolation

__all__ = ["POD_HOSTS", "PROFILE_URL", "SECTIONS", "AuthSettings", "DownloadSettings", "ErasureSettings",
           "IdentityStrategySettings",
           "OptOutSettings", "PollingSettings", "ProfileSettings", "Settings", "ThrottleSettings", "TimeoutSettings",
           "VerificationSettings", "config_fingerprint", "credentials_schema", "manifest", "parse_settings"]

_T = TypeVar("_T")

#: Default API origins per pod. DSR: mParticle documents one host for every pod. Events: documented per pod.
#: Identity: pod hosts known only from mParticle's SDKs (unprefixed keys go to us1). The Profile API documents
#: one host, ``api.mparticle.com`` (no pod hosts).
PROFILE_URL = "https://api.mparticle.com"
POD_HOSTS: dict[str, dict[str, str]] = {
    "us1": {"dsr": "https://opendsr.mparticle.com", "events": "https://s2s.mparticle.com",
            "identity": "https://identity.mparticle.com"},
    "us2": {"dsr": "https://opendsr.mparticle.com", "events": "https://s2s.us2.mparticle.com",
            "identity": "https://identity.us2.mparticle.com"},
    "eu1": {"dsr": "https://opendsr.mparticle.com", "events": "https://s2s.eu1.mparticle.com",
            "identity": "https://identity.eu1.mparticle.com"},
    "au1": {"dsr": "https://opendsr.mparticle.com", "events": "https://s2s.au1.mparticle.com",
            "identity": "https://identity.au1.mparticle.com"},
}


@dataclass(frozen=True)
class AuthSettings:
    """How to authenticate with one API: HTTP Basic, or OAuth 2.0 client credentials."""

    kind: Literal["basic", "oauth2_client_credentials"]
    key: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    token_url: str = ""
    audience: str = ""

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.key, self.secret, self.client_secret) if s)

    def wire_secrets(self) -> tuple[str, ...]:
        """What these credentials become on the wire, hidden like the credentials themselves: the Basic
        ``Authorization`` header value and the base64 of ``key:secret`` it carries (a server that quotes the
        header, or encodes it once more, quotes these)."""
        if self.kind != "basic" or not (self.key and self.secret):
            return ()
        pair = f"{self.key}:{self.secret}"
        try:
            raw = pair.encode("latin-1")  # as requests encodes it
        except UnicodeEncodeError:
            raw = pair.encode()
        encoded = base64.b64encode(raw).decode("ascii")
        return (f"Basic {encoded}", encoded)


@dataclass(frozen=True)
class ProfileSettings:
    """Where the Profile API is and how to reach it (optional)."""

    org_id: str
    account_id: str
    workspace_id: str
    base_url: str
    auth: AuthSettings

    def path(self) -> str:
        """``/{org}/{account}/{workspace}``, as every Profile API route names them."""
        return f"/{self.org_id}/{self.account_id}/{self.workspace_id}"


@dataclass(frozen=True)
class IdentityStrategySettings:
    """``identity_strategy``: how the workspace's IDSync strategy treats identities."""

    login_ids: tuple[str, ...]
    immutable_ids: tuple[str, ...]


@dataclass(frozen=True)
class OptOutSettings:
    """``opt_out``: what consent state an opt-out records."""

    ccpa_data_sale_opt_out: bool
    gdpr_purposes: tuple[str, ...]
    document: str
    location: str


@dataclass(frozen=True)
class ThrottleSettings:
    """``throttle``: the share of mParticle's limits to use, where the budget lives, and the retry bounds."""

    target_share: float
    backend: str
    max_retry_seconds: float
    max_retry_after_seconds: float
    sqlite_path: str | None = None
    redis_url: str | None = field(default=None, repr=False)
    limits: Mapping[str, float] = field(default_factory=dict)  #: api -> requests per second, overriding the manifest


@dataclass(frozen=True)
class TimeoutSettings:
    """``timeouts``: per HTTP call (connect, read) and per hook call (total_seconds), in seconds."""

    connect: float
    read: float
    total_seconds: float


@dataclass(frozen=True)
class PollingSettings:
    """``polling``: bounds on when the host is asked to check a pending request again."""

    min_interval_seconds: float
    max_interval_seconds: float


@dataclass(frozen=True)
class VerificationSettings:
    """``verification``: how an erasure is confirmed, and what an identifier that cannot be checked does."""

    grace_period_seconds: float
    attempts: int
    unverifiable: str  #: note or fail


@dataclass(frozen=True)
class DownloadSettings:
    """``download``: limits for downloading access results."""

    max_bytes: int
    allowed_hosts: tuple[str, ...]


@dataclass(frozen=True)
class ErasureSettings:
    """``erasure``: mParticle's waiting period and processing time, when to skip the wait, and suppression."""

    waiting_period_days: float
    processing_days: float
    skip_waiting_period: Literal["never", "when_at_risk", "always"]
    suppress_while_waiting: bool
    suppression_attribute: str


#: The schema's sections: each is built from its validated dict, one field per property of the same name.
SECTIONS: dict[str, type[Any]] = {
    "identity_strategy": IdentityStrategySettings, "opt_out": OptOutSettings, "throttle": ThrottleSettings,
    "timeouts": TimeoutSettings, "polling": PollingSettings, "verification": VerificationSettings,
    "download": DownloadSettings, "erasure": ErasureSettings}
#: Top-level settings taken as the schema gives them (arrays as tuples; an optional one left out is None).
AS_GIVEN = ("pod", "environment", "regulation", "callback_urls", "skip_waiting_period", "trust_store",
            "signature_trust_store", "signatures")


@dataclass(frozen=True)
class Settings:
    """Everything the connector needs to know, typed, with defaults applied, grouped as the schema is."""

    pod: str
    environment: str
    regulation: str
    identity_mapping: Mapping[str, str | None]  #: request category -> mParticle identity type (None: never sent)
    identity_strategy: IdentityStrategySettings
    verification: VerificationSettings
    profile: ProfileSettings | None
    dsr_auth: AuthSettings
    #: The DSR credentials' workspace (``dsr.workspace_id``, else ``profile.workspace_id``): signed answers must
    #: name it as their controller_id (:mod:`connector_mparticle.api.receipts`). None: not known.
    dsr_workspace_id: str | None
    input_auth: AuthSettings
    dsr_url: str
    events_url: str
    identity_url: str
    opt_out: OptOutSettings
    throttle: ThrottleSettings
    timeouts: TimeoutSettings
    polling: PollingSettings
    download: DownloadSettings
    erasure: ErasureSettings
    callback_urls: tuple[str, ...]
    skip_waiting_period: bool
    trust_store: str | None
    signature_trust_store: str | None
    signatures: Literal["record", "strict"]

    def secrets(self) -> tuple[str, ...]:
        """Every secret value in the settings (for redaction)."""
        profile = self.profile.auth.secrets() if self.profile else ()
        auths = (self.dsr_auth, self.input_auth, *((self.profile.auth,) if self.profile else ()))
        return (*self.dsr_auth.secrets(), *self.input_auth.secrets(), *profile,
                *(w for a in auths for w in a.wire_secrets()),
                *((self.throttle.redis_url,) if self.throttle.redis_url else ()))

    @property
    def verify(self) -> bool | str:
        """What TLS verification trusts: the configured trust store, else certifi (requests' default)."""
        return self.trust_store or True

    def api_urls(self) -> list[str]:
        """The configured API base URLs and OAuth token URLs."""
        urls = [self.dsr_url, self.events_url, self.identity_url, self.dsr_auth.token_url, self.input_auth.token_url]
        if self.profile is not None:
            urls += [self.profile.base_url, self.profile.auth.token_url]
        return [u for u in urls if u]

    def download_policy(self) -> UrlPolicy:
        """Where a results_url may point: mParticle's hosts (443), the configured API origins, and extras."""
        return UrlPolicy.of(self.api_urls(), (*manifest().egress_hosts, *self.download.allowed_hosts))

    def origin(self, api: str) -> Origin:
        """The origin of one API's base URL (``dsr``, ``events``, ``identity``, ``profile``)."""
        urls = {"dsr": self.dsr_url, "events": self.events_url, "identity": self.identity_url,
                "profile": self.profile.base_url if self.profile else PROFILE_URL}
        return origin_of(urls[api])

    def limit(self, api: str) -> tuple[float, float]:
        """(limit, window seconds) this connector budgets against for ``api``: an override (per second), or
        mParticle's published one from the manifest."""
        if api in self.throttle.limits:
            return float(self.throttle.limits[api]), 1.0
        rates = manifest().rate_limit(api)
        if not rates:
            raise ConfigurationError(f"no rate limit is known for the {api} API")
        return rates[0].limit, rates[0].window_seconds


def _auth(data: Mapping[str, Any]) -> AuthSettings:
    if data["type"] == "basic":
        return AuthSettings("basic", key=data["key"], secret=data["secret"])
    return AuthSettings("oauth2_client_credentials", client_id=data["client_id"], client_secret=data["client_secret"],
                        token_url=data["token_url"], audience=data["audience"])


def _profile(data: Mapping[str, Any] | None) -> ProfileSettings | None:
    if data is None:
        return None
    return ProfileSettings(str(data["org_id"]), str(data["account_id"]), str(data["workspace_id"]),
                           data.get("base_url", PROFILE_URL).rstrip("/"), _auth(data["auth"]))


def _workspace_id(full: Mapping[str, Any]) -> str | None:
    """The DSR credentials' workspace: ``dsr.workspace_id``, else ``profile.workspace_id`` (one workspace: two
    different ids are a mistake the connector will not guess about)."""
    named = {str(int(section["workspace_id"])) for section in (full["dsr"], full.get("profile") or {})
             if "workspace_id" in section}  # the schema allows ASCII digits only: 42 and "042" are one id
    if len(named) > 1:
        raise ConfigurationError("dsr.workspace_id and profile.workspace_id name different workspaces; the DSR "
                                 "credentials and the Profile API must be for one workspace")
    return named.pop() if named else None


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """A stable hash of a configuration (secrets included, so a rotated key is a new configuration)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def _as_field(value: Any) -> Any:
    """A validated JSON value as a frozen settings field: arrays become tuples."""
    return tuple(value) if isinstance(value, list) else value


def _section(cls: type[_T], data: Mapping[str, Any]) -> _T:
    """A section dataclass from its validated dict (the field names are the schema's property names)."""
    return cls(**{name: _as_field(value) for name, value in data.items()})


def _derived(full: Mapping[str, Any]) -> dict[str, Any]:
    """The settings worked out from the config: identity mapping, auth and base URL per API (pod hosts by default)."""
    hosts = POD_HOSTS[full["pod"]]
    return {
        "identity_mapping": {**DEFAULT_CATEGORIES, **full["identities"]},
        "profile": _profile(full.get("profile")),
        "dsr_auth": _auth(full["dsr"]["auth"]), "input_auth": _auth(full["inputs"]["auth"]),
        "dsr_workspace_id": _workspace_id(full),
        "dsr_url": full["dsr"].get("base_url", hosts["dsr"]).rstrip("/"),
        "events_url": full["inputs"].get("events_base_url", hosts["events"]).rstrip("/"),
        "identity_url": full["inputs"].get("identity_base_url", hosts["identity"]).rstrip("/"),
    }


def parse_settings(config: Mapping[str, Any]) -> Settings:
    """Validate ``config`` against the credentials schema and return typed settings.

    Raises :class:`ConfigurationError` listing every problem (paths only, never values).
    """
    found = problems(config)
    if found:
        raise ConfigurationError(str(SchemaViolation("mParticle connector configuration", found)))
    full = with_defaults(config)
    polling = full["polling"]
    if polling["min_interval_seconds"] > polling["max_interval_seconds"]:
        raise ConfigurationError("polling.min_interval_seconds must not exceed polling.max_interval_seconds")
    return Settings(**{name: _as_field(full.get(name)) for name in AS_GIVEN},
                    **{name: _section(cls, full[name]) for name, cls in SECTIONS.items()}, **_derived(full))
