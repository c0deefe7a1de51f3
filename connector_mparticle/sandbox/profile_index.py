"""The sandbox's profiles, found by mParticle ID and by identity: which profiles hold ``(type, value)``, the one
a set of identities resolves to (:mod:`~connector_mparticle.sandbox.resolution`), and the ids new profiles get.

Not locked: it is the :class:`~connector_mparticle.sandbox.store.Store`'s, used only under the store's lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from connector_mparticle.sandbox.records import Profile
from connector_mparticle.sandbox.resolution import resolve
from connector_mparticle.sandbox.workspace import IdentityStrategy

__all__ = ["ProfileIndex"]

_FIRST_MPID = 8_000_000_000_000_000_001


class ProfileIndex:
    """Profiles by mpid, and the mpids holding each ``(identity type, value)``."""

    def __init__(self) -> None:
        self._profiles: dict[int, Profile] = {}
        self._index: dict[tuple[str, str], set[int]] = {}
        self._mpids = itertools.count(_FIRST_MPID)

    def clear(self, restart_mpids: bool = False) -> None:
        """Forget every profile (new profiles still get new mpids, unless ``restart_mpids``: numbered from the
        first again, as in a fresh sandbox)."""
        self._profiles.clear()
        self._index.clear()
        if restart_mpids:
            self._mpids = itertools.count(_FIRST_MPID)

    def get(self, mpid: int) -> Profile | None:
        return self._profiles.get(mpid)

    def __contains__(self, mpid: object) -> bool:
        return mpid in self._profiles

    def __len__(self) -> int:
        return len(self._profiles)

    def all(self) -> list[Profile]:
        return list(self._profiles.values())

    def link(self, profile: Profile, kind: str, value: str) -> None:
        profile.identities[kind] = value
        self._index.setdefault((kind, value), set()).add(profile.mpid)

    def unlink(self, profile: Profile, kind: str) -> None:
        value = profile.identities.pop(kind, None)
        if value is not None:
            holders = self._index.get((kind, value))
            if holders is not None:
                holders.discard(profile.mpid)
                if not holders:
                    del self._index[(kind, value)]

    def holders(self, kind: str, value: str) -> list[Profile]:
        return [self._profiles[m] for m in self._index.get((kind, value), ())]

    def candidates(self, known: Mapping[str, str]) -> list[Profile]:
        mpids = set().union(*(self._index.get(item, set()) for item in known.items()))
        return [self._profiles[m] for m in mpids]

    def resolve(self, known: Mapping[str, str], strategy: IdentityStrategy, lookup: bool = False) -> Profile | None:
        found = resolve(known, self.candidates(known), strategy, lookup=lookup)
        assert found is None or isinstance(found, Profile)
        return found

    def unique_elsewhere(self, profile: Profile | None, kind: str, value: str, strategy: IdentityStrategy) -> bool:
        return kind in strategy.unique_ids and any(p is not profile for p in self.holders(kind, value))

    def new(self, identities: Mapping[str, str], strategy: IdentityStrategy, mpid: int | None = None) -> Profile:
        profile = Profile(mpid if mpid is not None else next(self._mpids), {})
        self._profiles[profile.mpid] = profile
        self.adopt(profile, identities, strategy)
        return profile

    def adopt(self, profile: Profile, identities: Mapping[str, str], strategy: IdentityStrategy) -> None:
        """Add identity types the profile lacks (profile conversion); values already set are never overwritten
        here (that is what /modify is for), and a unique id held by another profile is not copied."""
        for kind, value in identities.items():
            if kind not in profile.identities and not self.unique_elsewhere(profile, kind, value, strategy):
                self.link(profile, kind, value)

    def remove(self, profile: Profile) -> None:
        """Erase ``profile``: its identities no longer find it, nor does its mpid."""
        for kind in list(profile.identities):
            self.unlink(profile, kind)
        del self._profiles[profile.mpid]
