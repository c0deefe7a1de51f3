"""Read an access-results zip into a summary people can read, without extracting anything.

The zip holds ``profile.jsonl`` (the live profile, when the workspace includes it), further ``.jsonl`` files
of event batches, or ``empty.txt``. Entries are streamed line by line (constant memory); names are never
used as paths; a file whose declared or actual size breaks the limits is refused (zip bombs).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from connector_mparticle.errors import UnsafeResponseError

__all__ = ["summarise", "summary_text"]

MAX_ENTRIES = 10_000
MAX_RATIO = 200  #: uncompressed / compressed, per entry
MAX_LINE_BYTES = 16 * 1024 * 1024


def _lines(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> Any:
    with archive.open(info) as raw:
        for line in io.TextIOWrapper(raw, encoding="utf-8", errors="replace"):
            budget[0] -= len(line)
            if budget[0] < 0 or len(line) > MAX_LINE_BYTES:
                raise UnsafeResponseError("the results archive expands beyond its declared size", api="dsr")
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def summarise(path: Path, max_uncompressed: int) -> dict[str, Any]:
    """A JSON summary of a results zip: profiles, identities, attributes, consent, event counts."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise UnsafeResponseError("the results file is not a valid zip archive", api="dsr") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise UnsafeResponseError(f"the results archive has more than {MAX_ENTRIES} entries", api="dsr")
        declared = sum(i.file_size for i in infos)
        if declared > max_uncompressed or any(
                i.compress_size and i.file_size / i.compress_size > MAX_RATIO and i.file_size > 1_000_000
                for i in infos):
            raise UnsafeResponseError("the results archive would expand too far (a zip bomb?)", api="dsr")
        budget = [declared + len(infos)]
        profiles: list[dict[str, Any]] = []
        identities: dict[str, set[str]] = {}
        batches = events = 0
        event_types: Counter[str] = Counter()
        empty = False
        for info in infos:
            name = info.filename.rsplit("/", 1)[-1]
            if info.is_dir():
                continue
            if name == "empty.txt":
                empty = True
            elif name == "profile.jsonl":
                for profile in _lines(archive, info, budget):
                    if not isinstance(profile, dict):
                        continue
                    for entry in (profile.get("user_identities") or []) + (profile.get("device_identities") or []):
                        if isinstance(entry, dict) and "identity_type" in entry:
                            identities.setdefault(str(entry["identity_type"]), set()).add(str(entry.get("identity")))
                    profiles.append({
                        "mpid": str(profile.get("mpid")),
                        "user_attributes": profile.get("user_attributes") or {},
                        "audience_memberships": profile.get("audience_memberships") or [],
                        "consent_state": profile.get("consent_state") or {},
                    })
            elif name.endswith(".jsonl"):
                for batch in _lines(archive, info, budget):
                    if not isinstance(batch, dict):
                        continue
                    batches += 1
                    for event in batch.get("events") or []:
                        if isinstance(event, dict):
                            events += 1
                            event_types[str(event.get("event_type", "unknown"))] += 1
        return {
            "data_found": bool(profiles or batches),
            "profiles_found": len(profiles),
            "profiles": profiles,
            "identities": {k: sorted(v) for k, v in sorted(identities.items())},
            "event_batches": batches,
            "events": events,
            "event_types": dict(sorted(event_types.items())),
            "no_event_data": empty,
            "archive_entries": [i.filename for i in infos][:100],
        }


def summary_text(summary: dict[str, Any], request_id: str) -> str:
    """A short human-readable version of :func:`summarise`'s result."""
    lines = [f"mParticle access results for request {request_id}"]
    if not summary["data_found"] and not summary.get("no_event_data"):
        lines.append("mParticle holds no data for this subject.")
        return "\n".join(lines) + "\n"
    lines.append(f"Profiles found: {summary['profiles_found']}")
    for profile in summary["profiles"]:
        lines.append(f"  - mpid {profile['mpid']}: {len(profile['user_attributes'])} user attribute(s), "
                     f"{len(profile['audience_memberships'])} audience(s)")
        for regulation, purposes in sorted(profile["consent_state"].items()):
            for purpose, state in sorted((purposes or {}).items()):
                lines.append(f"      consent {regulation}.{purpose}: consented={state.get('consented')}")
    for kind, values in summary["identities"].items():
        lines.append(f"Identity {kind}: {', '.join(values)}")
    lines.append(f"Event batches: {summary['event_batches']} ({summary['events']} events)")
    for kind, count in summary["event_types"].items():
        lines.append(f"  - {kind}: {count}")
    if summary.get("no_event_data"):
        lines.append("mParticle found the profile(s) but holds no event data for them (empty.txt).")
    return "\n".join(lines) + "\n"
