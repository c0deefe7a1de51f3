"""Finding a subject's profiles, with the API that can answer for each identity type, and saying what it cannot.

The order, for each identifier:

1. an ``mpid``: the Profile API reads that profile (when ``profile`` is configured; IDSync cannot search by mpid);
2. an immutable id of the workspace (``identity_strategy.immutable_ids``): the Profile API resolves it;
3. any other type IDSync knows: an identity search, carrying the request's login ids too, since IDSync
   returns a profile that has a login id only to a request that carries it (``guides/idsync/user-data``);
4. a type no API can search (Microsoft advertising and publisher ids): not checkable, and the result says so.

Login and immutable ids decide what mParticle can reach at all, and a search is blind exactly where the DSR is
(both use IDSync's resolution), so "not found" confirms only what a search could have seen. :func:`blind_spots`
names what it could not see, so the result can say it plainly and not claim it verified:

* the workspace has login ids and the request carries none (beside an mpid, which reaches its own profile only):
  neither the DSR nor any search reaches a known profile, one that holds a login id (mParticle's DSR guide: such
  requests "will not be fulfilled for known profiles"; ``guides/idsync/user-data``);
* the workspace has immutable ids and the request carries none: under an immutable-id strategy a look-up returns
  only a profile matched by an immutable id ("the request does not match any known immutable IDs");
* the request's login or immutable ids matched no profile when first looked up (before an erasure is submitted:
  :func:`reached`; an opt-out's own look-up): a known profile under another value (a stale id, another spelling
  or case) is out of reach of the DSR and of every check, so "not found" afterwards confirms nothing. Said only
  when neither limit above already explains it.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector_mparticle.connector import MParticleConnector
from connector_mparticle.errors import ConfigurationError
from connector_mparticle.flows.subject import Identifier, Subject
from connector_mparticle.identities import MPID, identity_type

__all__ = ["Check", "Limit", "blind_spots", "check", "find_profile", "reached"]


@dataclass(frozen=True)
class Check:
    """Whether one identifier is still attached to a profile (``found`` None: it cannot be checked)."""

    identifier: Identifier
    via: str
    found: bool | None
    mpid: str | None = None
    why: str = ""


@dataclass(frozen=True)
class Limit:
    """Something neither the DSR nor any check can reach: a reason code of the result contract
    (:data:`dsr_framework.verification.REASON_CODES`), a sentence for people, and the mParticle identity types
    it is about."""

    code: str
    message: str
    types: tuple[str, ...]


def _login_values(conn: MParticleConnector, subject: Subject) -> dict[str, str]:
    login_ids = conn.settings.identity_strategy.login_ids
    return {name: value for name, value in subject.values().items() if name in login_ids}


def check(conn: MParticleConnector, subject: Subject, identifier: Identifier) -> Check:
    """Ask the API that can answer for ``identifier``'s type (see the module docstring)."""
    kind, value = identifier.kind, identifier.value
    if kind.name == MPID:
        if conn.profile is None:
            return Check(identifier, "none", None, why="IDSync cannot search by mpid and the Profile API is not "
                                                       "configured (profile)")
        found = conn.profile.by_mpid(value)
        return Check(identifier, "Profile API", found.found, found.mpid)
    immutable_ids = conn.settings.identity_strategy.immutable_ids
    if kind.name in immutable_ids and conn.profile is not None and kind.profile is not None:
        found = conn.profile.resolve(kind.profile, value)
        return Check(identifier, "Profile API (immutable id)", found.found, found.mpid)
    if kind.idsync is not None:
        searched = conn.identity.search({**_login_values(conn, subject), kind.name: value})
        return Check(identifier, "identity search", searched.found, searched.mpid)
    return Check(identifier, "none", None, why=f"no mParticle API can search by {kind.name}")


def _gated(conn: MParticleConnector, subject: Subject) -> dict[str, str]:
    """The request's values of the types that gate mParticle's look-ups (login and immutable ids)."""
    strategy = conn.settings.identity_strategy
    gates = {*strategy.login_ids, *strategy.immutable_ids}
    return {name: value for name, value in subject.values().items() if name in gates and name != MPID}


def reached(conn: MParticleConnector, subject: Subject) -> bool | None:
    """Before an erasure: does a search by the request's login and immutable ids find a profile? None when the
    request carries none (:func:`blind_spots` says so then). A profile found is what the erasure acts on and what
    the later checks can see go; nothing found means the DSR will match nothing by them either."""
    gated = {n: v for n, v in _gated(conn, subject).items() if identity_type(n).idsync is not None}
    return conn.identity.search(gated).found if gated else None


def blind_spots(conn: MParticleConnector, subject: Subject, found_before: bool | None = True) -> list[Limit]:
    """What neither the DSR nor any check can reach for this request (see the module docstring); empty when
    nothing is out of reach. ``found_before`` is :func:`reached` as it was before the erasure (None: unknown)."""
    strategy = conn.settings.identity_strategy
    if not any(i.kind.name != MPID for i in subject.identifiers):
        return []  # an mpid alone names exactly one profile, which the Profile API reads
    limits = []
    if strategy.immutable_ids and not set(strategy.immutable_ids) & set(subject.values()):
        names = " or ".join(strategy.immutable_ids)
        limits.append(Limit("immutable_id_required", f"the workspace's immutable ids ({names}) gate every look-up: "
                            f"the request carries no {names}, so mParticle neither erases nor finds a profile "
                            "without it", tuple(strategy.immutable_ids)))
    login = _login_values(conn, subject)
    if strategy.login_ids and not login:
        names = " or ".join(strategy.login_ids)
        limits.append(Limit("login_id_required", f"known profiles (those with a login id: {names}) cannot be "
                            f"reached: the request carries no {names}, and mParticle neither erases nor finds them "
                            "without it", tuple(strategy.login_ids)))
    elif not limits and (unmatched := _unmatched(conn, subject, found_before)) is not None:
        limits.append(unmatched)
    return limits


def _unmatched(conn: MParticleConnector, subject: Subject, found_before: bool | None) -> Limit | None:
    """The limit when the request's login and immutable ids matched no profile when first looked up (or whether
    they did is unknown); None when they did, or the request carries none."""
    gated = _gated(conn, subject)
    if not gated or found_before:
        return None
    names = ", ".join(sorted(gated))
    said = (f"no profile matched the request's {names} when it was first looked up" if found_before is False else
            f"whether a profile matched the request's {names} when the request was first submitted is unknown")
    return Limit("no_baseline", f"{said}: a known profile under another value (a stale id, another spelling or "
                 "case) is out of reach of mParticle's look-ups, erasure and checks alike, so finding nothing "
                 "confirms nothing", tuple(sorted(gated)))


def _immutable(conn: MParticleConnector, subject: Subject) -> Identifier | None:
    """The subject's first immutable id the Profile API can resolve, when it is configured."""
    if conn.profile is None:
        return None
    immutable_ids = conn.settings.identity_strategy.immutable_ids
    return next((i for i in subject.identifiers if i.kind.name in immutable_ids and i.kind.profile), None)


def find_profile(conn: MParticleConnector, subject: Subject) -> Check | None:
    """The one profile the subject's consent belongs to, asked of every kind of identifier the request carries (an
    mpid, an immutable id, one identity search with every searchable identifier, which IDSync resolves to one
    profile): the profile they find, or a check that found none. None when no identifier can be looked up.
    :class:`ConfigurationError` when they find different profiles (or an mpid that cannot be checked is not the
    profile the others find): the request does not say whose consent to change."""
    checks = _lookups(conn, subject)
    if not checks:
        return None
    found = [c for c in checks if c.found]
    unchecked = [c for c in checks if c.found is None]
    _one_profile(found, unchecked)
    return (found or unchecked or checks)[0]


def _one_profile(found: list[Check], unchecked: list[Check]) -> None:
    """:class:`ConfigurationError` unless the look-ups that found a profile found one and the same, and an mpid
    that could not be checked is that profile's."""
    named = {c.mpid for c in found} | {c.identifier.value for c in unchecked if found}
    if len(named) > 1:
        raise ConfigurationError(
            f"the request's identifiers name {len(named)} different mParticle profiles (looked up by "
            + ", ".join(f"{c.identifier.kind.name} via {c.via}" for c in (*found, *unchecked))
            + "), so whose consent to change is not known; nothing was recorded: send one subject's identifiers")


def _lookups(conn: MParticleConnector, subject: Subject) -> list[Check]:
    """One look-up per kind of identifier: the mpid, an immutable id (with the Profile API), then one search."""
    checks = []
    mpid = next((i for i in subject.identifiers if i.kind.name == MPID), None)
    if mpid is not None:
        checks.append(check(conn, subject, mpid))
    immutable = _immutable(conn, subject)
    if immutable is not None:
        checks.append(check(conn, subject, immutable))
    searchable = [i for i in subject.identifiers if i.kind.idsync is not None]
    if searchable:
        found = conn.identity.search({i.kind.name: i.value for i in searchable})
        checks.append(Check(searchable[0], "identity search", found.found, found.mpid))
    return checks
