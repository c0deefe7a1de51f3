"""What a request delivered into its output folder, vouched for by its signed state, so only that is reused.

Files found in a folder are never trusted for being there. Once a flow has put a request's files in place it
seals them (:func:`seal`): the request's state (:class:`~connector_mparticle.flows.state.RequestState`, HMAC-signed
with the request-state key) with ``delivered`` listing each file's name, size, SHA-256, media type and
description is written beside them as the hidden ``.STEM.delivered``. :func:`vouched` returns that list only
when the record verifies for this very request (its OpenDSR requests, which derive from the request id, the
type, the identifiers and the regulation) and every file it lists is still a plain file of the user's with
exactly those bytes; anything else (planted, edited, another request's files or record) is None: "not
delivered yet".

Writers remove the record before renaming new files into place (:func:`unseal`) and write it last, so a process
killed in between leaves no record and the next call writes everything again. Call these holding the
request's lock (:meth:`connector_mparticle.files.Folder.lock`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from connector_mparticle.errors import MParticleError
from connector_mparticle.files import FileRecord, Folder
from connector_mparticle.flows.common import Flow
from connector_mparticle.flows.state import RequestState
from connector_mparticle.flows.writing import write_checked
from dsr_framework.models import OutputFile

__all__ = ["Delivered", "record_name", "seal", "unseal", "vouched"]

MAX_RECORD_BYTES = 4 * 1024 * 1024


def record_name(file_stem: str) -> str:
    """The hidden delivery record beside a request's files."""
    return f".{file_stem}.delivered"


@dataclass(frozen=True)
class Delivered:
    """One file put in place for a request, as its record lists it."""

    record: FileRecord
    media_type: str
    description: str

    def output(self, folder: Folder) -> OutputFile:
        """How the host is told about it."""
        return OutputFile(str(folder.path_of(self.record.name)), self.media_type, self.record.size,
                          self.record.sha256, self.description)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.record.name, "size_bytes": self.record.size, "sha256": self.record.sha256,
                "media_type": self.media_type, "description": self.description}

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> Delivered:
        return cls(FileRecord(entry["name"], entry["size_bytes"], entry["sha256"]), entry["media_type"],
                   entry["description"])


def vouched(flow: Flow, folder: Folder, file_stem: str) -> list[Delivered] | None:
    """The files this request's signed record lists, if it verifies for this request and all are intact."""
    try:
        raw = folder.read(record_name(file_stem), MAX_RECORD_BYTES)
        data = json.loads(raw) if raw is not None else None
    except (MParticleError, ValueError, RecursionError):
        return None
    state = RequestState.from_dict(data, flow.subject_ids, flow.key)
    if state is None or {p.subject_request_id for p in state.parts} != set(flow.subject_ids) or not state.delivered:
        return None
    files = [Delivered.from_dict(entry) for entry in state.delivered]
    return files if all(folder.matches(f.record) for f in files) else None


def unseal(folder: Folder, file_stem: str) -> None:
    """Withdraw the record: from now until :func:`seal`, nothing in the folder is vouched for."""
    folder.remove(record_name(file_stem))


def seal(flow: Flow, folder: Folder, file_stem: str, files: list[Delivered]) -> tuple[OutputFile, ...]:
    """Write the record vouching for ``files`` (already in place); the host's descriptions of them."""
    assert flow.state is not None
    state = dataclasses.replace(flow.state, audit=[], delivered=[f.to_dict() for f in files])
    write_checked(flow.conn.redactor, folder, record_name(file_stem),
                  (json.dumps(state.to_dict(flow.key), sort_keys=True) + "\n").encode(), "the delivery record")
    return tuple(f.output(folder) for f in files)
