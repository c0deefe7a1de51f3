"""IDSync identity resolution: which one profile a set of identities belongs to.

The same rules serve IDSync (search, identify, login, logout), Events batches and DSRs, as mParticle says
they do (``guides/data-subject-requests``: "the same identity resolution process used for general
identification requests made to IDSync"). From ``guides/idsync/user-data`` and ``guides/idsync/components``:

1. Login ids protect known profiles: "a record with at least one login ID can only be returned if the identify
   request includes a matching login ID"; the same holds for immutable ids. So device ids alone (or, with the
   default strategy, an email alone) never reach a profile that has a customer id.
2. Under an immutable-id strategy a *look-up* (search, a DSR) returns only a profile the request matches by an
   immutable id: the documented search by email for a profile holding no immutable id answers "User Profile
   Not Found" because "the request does not match any known immutable IDs". Identify-style writes (identify,
   login, logout, Events batches) are not gated this way (docs silent; gating them would create a new profile
   for every anonymous request).
3. The identity priority decides: "mParticle looks up matching profiles for each identifier in the order
   defined by the identity priority until a single profile can be returned". The highest-ranked identity of the
   request that matches profiles selects them; lower-ranked ones only break ties among those (the page's first
   example returns Profile 1 although its IDFV differs from the request's). An identity that matches none of
   the remaining profiles is skipped. A tie no identity breaks goes to the oldest profile (docs silent).

``IdentityStrategy.conflicts`` (docs silent) switches on the stricter reading the sandbox used before: with
``user_identities`` (or ``unique_ids``), when no login or unique id of the request decides, a profile that holds a
*different* value of a user identity (or of a unique id) the request carries is taken for another person and
is not returned. The default, ``none``, is the documented algorithm above.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from connector_mparticle.sandbox.identity_types import by_name
from connector_mparticle.sandbox.workspace import IdentityStrategy

__all__ = ["Candidate", "is_logged_in", "resolve"]


class Candidate(Protocol):
    """What resolution needs to know about a profile."""

    @property
    def mpid(self) -> int: ...

    @property
    def identities(self) -> Mapping[str, str]: ...

    @property
    def created_ms(self) -> int: ...


def _matches(profile: Candidate, known: Mapping[str, str], kinds: Iterable[str]) -> bool:
    """Whether the profile holds one of the request's values of ``kinds``."""
    return any(t in known and profile.identities.get(t) == known[t] for t in kinds)


def _protected(profile: Candidate, known: Mapping[str, str], strategy: IdentityStrategy) -> bool:
    """Rule 1: the profile has login (or immutable) ids and the request matches none of them."""
    for kinds in (strategy.login_ids, strategy.immutable_ids):
        held = [t for t in kinds if t in profile.identities]
        if held and not _matches(profile, known, held):
            return True
    return False


def _distinguishes(kind: str, strategy: IdentityStrategy) -> bool:
    """Whether two values of ``kind`` mean two people under the ``conflicts`` setting."""
    if strategy.conflicts == "unique_ids":
        return kind in strategy.unique_ids
    identity = by_name(kind)
    return identity is not None and not identity.device


def _without_conflicts(pool: list[Candidate], known: Mapping[str, str],
                       strategy: IdentityStrategy) -> list[Candidate]:
    """The ``conflicts`` setting (docs silent): unless a login or unique id decides, drop profiles holding
    another value of an identity the request carries."""
    if strategy.conflicts == "none":
        return pool
    decided = [p for p in pool if _matches(p, known, (*strategy.login_ids, *strategy.unique_ids))]
    return decided or [p for p in pool if not any(
        p.identities.get(kind, value) != value and _distinguishes(kind, strategy) for kind, value in known.items())]


def _holding(profiles: list[Candidate], kind: str, value: str) -> list[Candidate]:
    return [p for p in profiles if p.identities.get(kind) == value]


def _by_priority(pool: list[Candidate], known: Mapping[str, str], strategy: IdentityStrategy) -> Candidate | None:
    """Rule 3: look profiles up identity by identity, highest priority first, until one is left."""
    selected: list[Candidate] = []
    for kind in (t for t in strategy.hierarchy if t in known):
        selected = _holding(selected or pool, kind, known[kind]) or selected
        if len(selected) == 1:
            return selected[0]
    return min(selected, key=lambda p: (p.created_ms, p.mpid)) if selected else None


def resolve(known: Mapping[str, str], candidates: Iterable[Candidate], strategy: IdentityStrategy, *,
            lookup: bool = False) -> Candidate | None:
    """The profile ``known`` (canonical type -> value) resolves to among ``candidates`` (those sharing a value).

    ``lookup`` is True for a search or a DSR (rule 2 applies), False for identify-style writes."""
    pool = [p for p in candidates if not _protected(p, known, strategy)]
    if lookup and strategy.immutable_ids:
        pool = [p for p in pool if _matches(p, known, strategy.immutable_ids)]
    return _by_priority(_without_conflicts(pool, known, strategy), known, strategy)


def is_logged_in(identities: Mapping[str, str], strategy: IdentityStrategy) -> bool:
    """Whether a profile with ``identities`` is a known (logged-in) user: it holds a login id."""
    return any(t in identities for t in strategy.login_ids)
