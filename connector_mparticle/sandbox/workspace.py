"""Workspace settings that change what mParticle does with data: identity strategy, privacy, forwarding, auth.

Defaults follow mParticle's documents; where they are silent the README's sandbox table says so. A settings
object is immutable: the admin API swaps in a new one, so a request always sees one consistent set.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from connector_mparticle.sandbox.identity_types import IDENTITY_TYPES, by_name

__all__ = ["DEFAULT_HIERARCHY", "ForwardingPartner", "IdentityStrategy", "WorkspaceBook", "WorkspaceSettings"]

#: ``guides/idsync/default-strategy``: the default identity hierarchy (customer id, phone number, email, other,
#: social ids, then device ids, the device application stamp last). Types the page does not rank follow in
#: table order (docs silent).
DEFAULT_HIERARCHY: tuple[str, ...] = (
    "customer_id", "mobile_number", "phone_number_2", "phone_number_3", "email", "other",
    *(f"other_id_{n}" for n in range(2, 11)), "facebook", "google", "twitter", "microsoft", "yahoo", "ios_idfa",
    "ios_idfv", "android_aaid", "android_uuid", "roku_aid", "roku_publisher_id", "microsoft_publisher_id",
    "microsoft_aid", "device_application_stamp",
)
DEFAULT_HIERARCHY = DEFAULT_HIERARCHY + tuple(t.name for t in IDENTITY_TYPES if t.name not in DEFAULT_HIERARCHY)
#: ``IdentityStrategy.conflicts``: ``none`` is the documented priority look-up (``guides/idsync/components``);
#: the others (docs silent) say which differing values mean "another person" when no login/unique id decides.
CONFLICT_RULES = ("none", "user_identities", "unique_ids")
#: APIs that may accept OAuth bearer tokens besides the Profile API (which takes nothing else).
OAUTH_CAPABLE = ("dsr", "events", "identity")


@dataclass(frozen=True)
class IdentityStrategy:
    """How IDSync resolves identities to one profile (``guides/idsync/user-data``, ``.../default-strategy``).

    The defaults are mParticle's default strategy (profile conversion; customer id is the login and unique
    id; no immutable id, which an account must ask for, e.g. for the Profile API's resolve, where the page
    calls the customer id the usual one). ``conflicts`` (docs silent): ``none`` (the default) follows the
    documented priority look-up, where a differing lower-priority value does not exclude a profile; with
    ``user_identities`` a profile that holds a different value of a user identity the request carries is another
    person; with ``unique_ids`` only unique ids say so."""

    login_ids: tuple[str, ...] = ("customer_id",)
    unique_ids: tuple[str, ...] = ("customer_id",)
    immutable_ids: tuple[str, ...] = ()
    hierarchy: tuple[str, ...] = DEFAULT_HIERARCHY
    conflicts: str = "none"

    def __post_init__(self) -> None:
        for name in (*self.login_ids, *self.unique_ids, *self.immutable_ids, *self.hierarchy):
            if by_name(name) is None:
                raise ValueError(f"unknown identity type '{name}'")
        # guides/idsync/user-data: "To be set as an immutable ID, an identifier must also be set as a unique
        # identifier and a login ID."
        loose = sorted(set(self.immutable_ids) - (set(self.login_ids) & set(self.unique_ids)))
        if loose:
            raise ValueError(f"immutable ids must also be login and unique ids: {', '.join(loose)}")
        if self.conflicts not in CONFLICT_RULES:
            raise ValueError(f"conflicts must be one of {', '.join(CONFLICT_RULES)}")
        missing = tuple(t.name for t in IDENTITY_TYPES if t.name not in self.hierarchy)
        object.__setattr__(self, "hierarchy", tuple(self.hierarchy) + missing)

    def to_dict(self) -> dict[str, Any]:
        return {"login_ids": list(self.login_ids), "unique_ids": list(self.unique_ids),
                "immutable_ids": list(self.immutable_ids), "hierarchy": list(self.hierarchy),
                "conflicts": self.conflicts}


@dataclass(frozen=True)
class ForwardingPartner:
    """An output configured to receive forwarded erasure requests (``guides/data-subject-requests``).

    ``outcome`` is the status it reaches once the erasure is forwarded: ``sent``, ``failed`` or ``skipped``."""

    domain: str
    name: str
    outcome: str = "sent"
    status_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "name": self.name, "outcome": self.outcome,
                "status_message": self.status_message}


@dataclass(frozen=True)
class WorkspaceSettings:
    """Everything a workspace's configuration decides, with the documented defaults."""

    identity: IdentityStrategy = field(default_factory=IdentityStrategy)
    #: GDPR purposes defined in the workspace (Setup > Privacy Settings); none until someone defines them.
    gdpr_purposes: frozenset[str] = frozenset()
    #: Privacy > Privacy Settings: include the live profile (profile.jsonl) in access results; off by default.
    include_live_profile: bool = False
    #: outputs that receive forwarded erasures; none unless configured.
    forwarding_partners: tuple[ForwardingPartner, ...] = ()
    #: APIs besides the Profile API that accept OAuth bearer tokens; mParticle documents Basic only for them.
    oauth_apis: frozenset[str] = frozenset()
    #: Profile API status for an unknown or erased mpid. The page documents no 404, only "400: ... the
    #: requested profile is invalid"; 404 is there for testing a client against the other reading.
    profile_not_found_status: int = 400
    #: IDSync's "API key only" authentication (``x-mp-key`` alone): "only selectively enabled - and is disabled
    #: by default" (``developers/idsync/http-api``).
    idsync_key_only: bool = False
    #: User attributes whose presence takes a profile out of every audience: the audience criterion
    #: "attribute does not exist" that ``guides/data-subject-requests`` recommends for a subject whose erasure waits
    #: ("set a user attribute and apply audience criteria ... to exclude them"). None unless configured.
    audience_exclusions: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "gdpr_purposes", frozenset(p.lower() for p in self.gdpr_purposes))
        unknown = sorted(set(self.oauth_apis) - set(OAUTH_CAPABLE))
        if unknown:
            raise ValueError(f"oauth_apis: unknown API(s) {', '.join(unknown)} (known: {', '.join(OAUTH_CAPABLE)})")
        if self.profile_not_found_status not in (400, 404):
            raise ValueError("profile_not_found_status must be 400 or 404")

    def to_dict(self) -> dict[str, Any]:
        return {"identity": self.identity.to_dict(), "gdpr_purposes": sorted(self.gdpr_purposes),
                "include_live_profile": self.include_live_profile,
                "forwarding_partners": [p.to_dict() for p in self.forwarding_partners],
                "oauth_apis": sorted(self.oauth_apis), "profile_not_found_status": self.profile_not_found_status,
                "idsync_key_only": self.idsync_key_only, "audience_exclusions": sorted(self.audience_exclusions)}

    def updated(self, changes: dict[str, Any]) -> WorkspaceSettings:
        """A copy with ``changes`` (JSON, already checked against the admin schema) applied."""
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "identity":
                fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
                values[name] = replace(self.identity, **fields)
            elif name == "forwarding_partners":
                values[name] = tuple(ForwardingPartner(**p) for p in value)
            elif name in ("gdpr_purposes", "oauth_apis", "audience_exclusions"):
                values[name] = frozenset(value)
            else:
                values[name] = value
        return replace(self, **values)


class WorkspaceBook:
    """Holds the current settings; owns its lock."""

    def __init__(self, settings: WorkspaceSettings) -> None:
        self._lock = threading.Lock()
        self._default = settings
        self._settings = settings

    @property
    def current(self) -> WorkspaceSettings:
        with self._lock:
            return self._settings

    def update(self, changes: dict[str, Any]) -> WorkspaceSettings:
        with self._lock:
            self._settings = self._settings.updated(changes)
            return self._settings

    def reset(self) -> None:
        with self._lock:
            self._settings = self._default
