"""The access/portability results file (``guides/data-subject-requests``, "Access / Portability Response Format").

A zip of JSON Lines: ``profile.jsonl`` (the live profile, only when the workspace includes it: off by default),
further ``.jsonl`` files of event batches (one complete batch per line, split over several files, each in the
stored form of :mod:`~connector_mparticle.sandbox.stored_batches`), or ``empty.txt`` when profiles were found but
hold no data. File names for the batch files are not documented; mParticle's sample result uses
``<uuid>-<n>-<n>.jsonl``, and so does the sandbox. Lines are compact JSON, as in the sample.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Collection
from pathlib import Path

from connector_mparticle.sandbox.profile_document import PROFILE_FIELDS, profile_document
from connector_mparticle.sandbox.records import Profile
from connector_mparticle.sandbox.shapes import Shapes
from connector_mparticle.sandbox.stored_batches import stored_batch

__all__ = ["BATCHES_PER_FILE", "write_results_zip"]

BATCHES_PER_FILE = 500  #: docs silent: how many batches each .jsonl file holds


def _compact(document: object) -> str:
    return json.dumps(document, separators=(",", ":"))


def _stored(profile: Profile, shapes: Shapes, seq: int) -> list[str]:
    """A profile's batches, one stored-form line each."""
    return [_compact(stored_batch(batch, profile.mpid, receipt["received_timestamp_ms"], receipt["historical"],
                                  shapes, seq, profile.mpid, n))
            for n, (batch, receipt) in enumerate(zip(profile.batches, profile.receipts, strict=True))]


def write_results_zip(path: Path, request_id: str, profiles: list[Profile], include_live_profile: bool,
                      audience_id: Callable[[str], int], shapes: Shapes, seq: int, padding: int = 0,
                      exclusions: Collection[str] = ()) -> None:
    """Write the results for ``profiles`` of request number ``seq`` (plus ``padding.bin`` of random bytes when a
    benchmark asks)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        if padding > 0:
            with archive.open(zipfile.ZipInfo("padding.bin"), "w", force_zip64=True) as blob:
                for start in range(0, padding, 1 << 20):
                    blob.write(os.urandom(min(1 << 20, padding - start)))
        if include_live_profile:
            lines = [_compact(shapes.ordered(profile_document(p, PROFILE_FIELDS[:4], audience_id, mpid_key="id",
                                                              account_attributes={}, exclusions=exclusions),
                                             seq, p.mpid))
                     for p in profiles]
            archive.writestr("profile.jsonl", "\n".join(lines) + "\n")
        batches = [line for p in profiles for line in _stored(p, shapes, seq)]
        chunks = [batches[i:i + BATCHES_PER_FILE] for i in range(0, len(batches), BATCHES_PER_FILE)]
        for number, chunk in enumerate(chunks, start=1):
            archive.writestr(f"{request_id}-{number}-{len(chunks)}.jsonl", "\n".join(chunk) + "\n")
        if not batches:
            archive.writestr("empty.txt", "MPIDs were found for this request, but no event data exists for them.\n")
