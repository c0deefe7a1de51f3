"""Settings of a sandbox instance, with defaults that make it fast for tests and the demo."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector_mparticle.sandbox.limits import Limit
from connector_mparticle.sandbox.records import Durations
from connector_mparticle.sandbox.shapes import ShapeSettings, default_settings
from connector_mparticle.sandbox.workspace import ForwardingPartner, IdentityStrategy, WorkspaceSettings

__all__ = ["SandboxConfig", "SandboxCredentials"]


@dataclass(frozen=True)
class SandboxCredentials:
    """The credentials the sandbox accepts. Not real secrets: they only open the local sandbox."""

    workspace_key: str = "sbx-wk-7c2f9e4a"
    workspace_secret: str = "sbx-ws-Q8vT3nLp6Rz2Xk9M"  # noqa: S105 - a documented local test credential
    input_key: str = "sbx-ik-5b8d1e6f"
    input_secret: str = "sbx-is-H4mW7cJt2Yq9Ns5D"  # noqa: S105
    client_id: str = "sbx-ci-9e3a6c1d"
    client_secret: str = "sbx-cs-B6xP2kRv8Gm4Tz7L"  # noqa: S105
    workspace_id: int = 12345
    account_id: int = 2345  #: Profile API paths name the org, account and workspace
    org_id: int = 345

    def connector_config(self, base_url: str, oauth: bool = False) -> dict[str, object]:
        """A connector configuration that points every API at a sandbox at ``base_url``."""
        def auth(key: str, secret: str) -> dict[str, str]:
            if oauth:
                return {"type": "oauth2_client_credentials", "client_id": self.client_id,
                        "client_secret": self.client_secret, "token_url": f"{base_url}/oauth/token"}
            return {"type": "basic", "key": key, "secret": secret}

        return {
            "dsr": {"auth": auth(self.workspace_key, self.workspace_secret), "base_url": base_url},
            "inputs": {"auth": auth(self.input_key, self.input_secret),
                       "events_base_url": base_url, "identity_base_url": base_url},
            "profile": {"org_id": self.org_id, "account_id": self.account_id, "workspace_id": self.workspace_id,
                        "base_url": base_url,
                        "auth": {"type": "oauth2_client_credentials", "client_id": self.client_id,
                                 "client_secret": self.client_secret, "token_url": f"{base_url}/oauth/token"}},
        }


def _default_durations() -> dict[str, Durations]:
    return {"access": Durations(1.0, 2.0), "erasure": Durations(1.0, 2.0)}


@dataclass
class SandboxConfig:
    """How a sandbox behaves. Apart from the address, TLS, credentials and seed, the admin API can change each
    of these at run time as well."""

    host: str = "127.0.0.1"
    port: int = 0  #: 0 picks a free port
    https: bool = False
    credentials: SandboxCredentials = field(default_factory=SandboxCredentials)
    durations: dict[str, Durations] = field(default_factory=_default_durations)
    overrun_seconds: float = 0.0  #: requests complete this long after their expected_completion_time
    results_ttl_seconds: float = 7 * 86400.0  #: results_url answers 410 after this (mParticle: 7 days)
    limits: dict[str, Limit] | None = None  #: None: mParticle's published limits (limits.PUBLISHED_LIMITS)
    token_ttl_seconds: float = 28800.0  #: OAuth access-token lifetime (mParticle: 8 hours)
    audience: str = "https://api.mparticle.com"
    include_live_profile: bool = False  #: put profile.jsonl in access results (opt-in at mParticle; off)
    seed: int | None = None  #: seeds fault injection, for repeatable runs
    max_request_bytes: int = 256 * 1024  #: Events API: "the total request size must be under 256kb"
    results_padding_bytes: int = 0  #: benchmarks: add this many incompressible bytes to each results zip
    gdpr_purposes: tuple[str, ...] = ()  #: GDPR purposes defined in the workspace (none by default)
    oauth_apis: tuple[str, ...] = ()  #: APIs that also accept bearer tokens: dsr, events, identity
    identity: IdentityStrategy = field(default_factory=IdentityStrategy)  #: login, unique, immutable ids
    forwarding_partners: tuple[ForwardingPartner, ...] = ()  #: outputs erasures are forwarded to
    profile_not_found_status: int = 400  #: Profile API answer for an unknown or erased mpid (400 or 404)
    log_bodies: tuple[str, ...] = ()  #: APIs whose request bodies the request log keeps (never oauth's)
    idsync_key_only: bool = False  #: IDSync accepts x-mp-key alone (off by default at mParticle)
    audience_exclusions: tuple[str, ...] = ()  #: user attributes that take a profile out of every audience
    #: answer in every documented shape (shapes.py); default from MPARTICLE_SANDBOX_SHAPES / _SHAPE_SEED
    shapes: ShapeSettings = field(default_factory=default_settings)

    def workspace(self) -> WorkspaceSettings:
        """The workspace settings these switches describe."""
        return WorkspaceSettings(self.identity, frozenset(self.gdpr_purposes), self.include_live_profile,
                                 tuple(self.forwarding_partners), frozenset(self.oauth_apis),
                                 self.profile_not_found_status, self.idsync_key_only,
                                 frozenset(self.audience_exclusions))
