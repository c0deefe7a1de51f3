"""Finding a subject's profiles, with the API that can answer for each identity type, and saying what it cannot.

The order, for each identifier:

1. an ``mpid``: the Profile API reads that profile (when ``profile`` is configured; IDSync cannot search by mpid);
2. an immutable id of the workspace (``identity_strategy.immutable_ids``): the Profile API resolves it;
3. any other type IDSync knows: an identity search, carrying the request's login ids too, since IDSync
   returns a profile that has a login id only to a request that carries it (``guides/idsync/user-data``);
4. a type no API can search (Microsoft advertising and publisher ids): not checkable, and the result says so.

Login ids decide what mParticle can reach at all. When the workspace has login ids and the request carries
none, neither the DSR nor any search can reach a known profile (one that holds a login id): mParticle's DSR
guide says such requests "will not be fulfilled for known profiles". :func:`blind_spot` names that limit so
the result can say it plainly.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector_mparticle.connector import MParticleConnector
from connector_mparticle.flows.subject import Identifier, Subject
from connector_mparticle.identities import MPID

__all__ = ["Check", "blind_spot", "check", "find_profile"]


@dataclass(frozen=True)
class Check:
    """Whether one identifier is still attached to a profile (``found`` None: it cannot be checked)."""

    identifier: Identifier
    via: str
    found: bool | None
    mpid: str | None = None
    why: str = ""


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


def blind_spot(conn: MParticleConnector, subject: Subject) -> str | None:
    """Why known profiles are out of reach for this request, or None when they are not."""
    login_ids = conn.settings.identity_strategy.login_ids
    if not login_ids or _login_values(conn, subject) or subject.get(MPID) is not None:
        return None
    names = " or ".join(login_ids)
    return (f"known profiles (those with a login id: {names}) cannot be reached: the request carries no {names}, "
            "and mParticle neither erases nor finds them without it")


def _immutable(conn: MParticleConnector, subject: Subject) -> Identifier | None:
    """The subject's first immutable id the Profile API can resolve, when it is configured."""
    if conn.profile is None:
        return None
    immutable_ids = conn.settings.identity_strategy.immutable_ids
    return next((i for i in subject.identifiers if i.kind.name in immutable_ids and i.kind.profile), None)


def find_profile(conn: MParticleConnector, subject: Subject) -> Check | None:
    """The profile the subject's consent belongs to: by mpid, then by immutable id, then one identity search with
    every searchable identifier (IDSync resolves them to one profile). None when no identifier can be looked up."""
    mpid = next((i for i in subject.identifiers if i.kind.name == MPID), None)
    if mpid is not None:
        return check(conn, subject, mpid)
    immutable = _immutable(conn, subject)
    if immutable is not None:
        return check(conn, subject, immutable)
    searchable = {i.kind.name: i.value for i in subject.identifiers if i.kind.idsync is not None}
    if not searchable:
        return None
    found = conn.identity.search(searchable)
    return Check(subject.identifiers[0], "identity search", found.found, found.mpid)
