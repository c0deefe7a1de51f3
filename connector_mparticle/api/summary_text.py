"""A results summary as people read it: the request, what mParticle returned, each profile, the identities and the
event counts, and what the export could not reach, as bounded as the summary itself (it says what it leaves out).
"""

from __future__ import annotations

from typing import Any

from connector_mparticle.api.summary import not_listed_lines
from dsr_framework.text import for_people

__all__ = ["summary_text"]


def summary_text(summary: dict[str, Any]) -> str:
    """A short human-readable version of the summary the access flow writes (see ``flows.access``); as bounded
    as the summary, saying what it leaves out.

    Each line is passed through :func:`~dsr_framework.text.for_people`: a value from the archive cannot add a
    line or carry an escape sequence into a terminal that shows the file."""
    return "".join(for_people(line) + "\n" for line in _summary_lines(summary))


def _summary_lines(summary: dict[str, Any]) -> list[str]:
    found = summary["results"]
    lines = [*_header_lines(summary["request"], summary["mparticle"]), ""]
    gaps = _gaps(summary)
    if not found["data_found"]:
        return [*lines, *_nothing_lines(found, gaps)]
    if gaps:
        lines += ["This may not be all of the subject's data:", *gaps, ""]
    lines.append(f"Profiles found: {found['profiles_found']}")
    for profile in found["profiles"]:
        lines += _profile_lines(profile)
    lines += [f"Identity {kind}: {', '.join(values)}" for kind, values in found["identities"].items()]
    lines.append(f"Event batches: {found['event_batches']} ({found['events']} events)")
    lines += [f"  - {kind}: {count}" for kind, count in found["event_types"].items()]
    if found.get("no_event_data"):
        lines.append("mParticle found the profile(s) but holds no event data for them (empty.txt).")
    lines += not_listed_lines(found.get("not_listed") or {})
    return lines


def _gaps(summary: dict[str, Any]) -> list[str]:
    """What the export could not reach (the summary's ``verification`` reasons), one indented line each."""
    return [f"  - {reason['message']}" for reason in (summary.get("verification") or {}).get("reasons", [])]


def _nothing_lines(found: dict[str, Any], gaps: list[str]) -> list[str]:
    """When mParticle returned no data: never "holds none" while known profiles were out of reach."""
    if found.get("no_event_data"):
        return ["mParticle found the subject's profile(s) but holds no event data for them (empty.txt).", *gaps]
    if gaps:
        return ["mParticle returned no data for these identifiers, which is not proof that it holds none:", *gaps]
    return ["mParticle holds no data for this subject."]


def _header_lines(request: dict[str, Any], mparticle: dict[str, Any]) -> list[str]:
    return [f"mParticle access results for request {request['request_id']}",
            f"  regulation {request['regulation']}, submitted {request['submitted_at']}",
            f"  identifiers: {', '.join(f'{k} {v}' for k, v in sorted(request['identities'].items()))}",
            *(f"  mParticle request {r['subject_request_id']} ({r['label']}): "
              f"{'results ' + str(r['results_size_bytes']) + ' bytes' if r['results_sha256'] else 'no data'}"
              for r in mparticle["requests"]),
            f"  results downloaded {mparticle['downloaded_at']}"]


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    left_out = profile.get("not_listed") or {}
    names = [str(a.get("audience_name")) for a in profile["audience_memberships"] if isinstance(a, dict)]
    attributes = len(profile["user_attributes"]) + left_out.get("user_attributes", 0)
    audiences = len(profile["audience_memberships"]) + left_out.get("audience_memberships", 0)
    lines = [f"  - mpid {profile['mpid']}: {attributes} user attribute(s), {audiences} audience membership(s)"
             + (f" ({', '.join(names)})" if names else "")]
    for regulation, purposes in sorted(profile["consent_state"].items()):
        for purpose, state in sorted((purposes or {}).items()):
            consented = state.get("consented") if isinstance(state, dict) else None
            lines.append(f"      consent {regulation}.{purpose}: consented={consented}")
    return lines + not_listed_lines(left_out, "      ")
