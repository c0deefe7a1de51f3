"""IDSync identity resolution: which one profile a set of identities belongs to.

The same rules serve IDSync (search, identify, login, logout), Events batches and DSRs, as mParticle says
they do (``guides/data-subject-requests``: "the same identity resolution process used for general
identification requests made to IDSync"). From ``guides/idsync/user-data`` and ``guides/idsync/components``:

1. A profile holding a login id can only be returned when the request carries a matching login id; the same
   holds for immutable ids. So device ids alone (or, with the default strategy, an email alone) never reach a
   profile that has a customer id.
2. Login and unique ids decide: when the request's login or unique ids match profiles, only those compete.
3. Otherwise a profile that holds a different value of an identity the request carries is another person
   (docs silent; ``IdentityStrategy.conflicts`` chooses which identities count), so it is not returned and a
   write creates a separate profile instead of merging two people.
4. Among what is left, the identity hierarchy decides: the highest-ranked identity that matches narrows the
   candidates, lower ones break ties, until one profile is left. A tie that survives every identity goes to
   the oldest profile (docs silent).
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


def _protected(profile: Candidate, known: Mapping[str, str], strategy: IdentityStrategy) -> bool:
    """Rule 1: the profile has login (or immutable) ids and the request matches none of them."""
    for kinds in (strategy.login_ids, strategy.immutable_ids):
        held = [t for t in kinds if t in profile.identities]
        if held and not any(known.get(t) == profile.identities[t] for t in held):
            return True
    return False


def _decided(profile: Candidate, known: Mapping[str, str], strategy: IdentityStrategy) -> bool:
    """Rule 2: the profile matches one of the request's login or unique ids."""
    deciding = set(strategy.login_ids) | set(strategy.unique_ids)
    return any(profile.identities.get(t) == v for t, v in known.items() if t in deciding)


def _distinguishes(kind: str, strategy: IdentityStrategy) -> bool:
    """Whether two values of ``kind`` mean two people (``IdentityStrategy.conflicts`` says which count)."""
    if strategy.conflicts == "unique_ids":
        return kind in strategy.unique_ids
    identity = by_name(kind)
    return identity is not None and not identity.device


def _conflicts(profile: Candidate, known: Mapping[str, str], strategy: IdentityStrategy) -> bool:
    """Rule 3: the profile holds another value of an identity the request carries."""
    return any(profile.identities.get(kind, value) != value and _distinguishes(kind, strategy)
               for kind, value in known.items())


def _eligible(known: Mapping[str, str], candidates: Iterable[Candidate],
              strategy: IdentityStrategy) -> list[Candidate]:
    """Rules 1 to 3: the candidates the request may resolve to."""
    pool = [p for p in candidates if not _protected(p, known, strategy)]
    decided = [p for p in pool if _decided(p, known, strategy)]
    return decided or [p for p in pool if not _conflicts(p, known, strategy)]


def _narrowed(pool: list[Candidate], known: Mapping[str, str], strategy: IdentityStrategy) -> list[Candidate]:
    """Rule 4: narrow ``pool`` by each identity of the hierarchy the request carries, highest first."""
    for kind in (t for t in strategy.hierarchy if t in known):
        if len(pool) == 1:
            break
        pool = [p for p in pool if p.identities.get(kind) == known[kind]] or pool
    return pool


def resolve(known: Mapping[str, str], candidates: Iterable[Candidate], strategy: IdentityStrategy) -> Candidate | None:
    """The profile ``known`` (canonical type -> value) resolves to among ``candidates`` (those sharing a value)."""
    pool = _eligible(known, candidates, strategy)
    if not pool:
        return None
    return min(_narrowed(pool, known, strategy), key=lambda p: (p.created_ms, p.mpid))


def is_logged_in(identities: Mapping[str, str], strategy: IdentityStrategy) -> bool:
    """Whether a profile with ``identities`` is a known (logged-in) user: it holds a login id."""
    return any(t in identities for t in strategy.login_ids)
