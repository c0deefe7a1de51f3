"""The request ids this user's command line has sent, so that reusing one names the same request.

``--request-id`` promises that reusing an id resumes that request and never submits it twice. Without
``--state``, nothing local said which subject an id was used for: the same id with another ``--email``
became a second request, with its files where the first one's were. Each request the command line sends
leaves a record here (per request type: an access and a deletion may share a ticket id), and a new
command with a known id must agree with it (regulation, every identifier), or it is refused before anything
is sent (exit 2), naming what differs.

A record holds no identifier: only keyed hashes (HMAC-SHA256 under the config's state key, which derives from
the DSR credentials), one per identifier category, so it can say *which* identifier differs without showing
either value, and a record from another workspace's credentials is simply not found. Records live in
``$XDG_STATE_HOME/mparticle-dsr/request-ids`` (``~/.local/state/...``), written through
:mod:`connector_mparticle.files` (a folder that is the user's alone, files 0600).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connector_mparticle.cli.exits import CliError
from connector_mparticle.errors import MParticleError
from connector_mparticle.files import Folder
from dsr_framework import DsrRequest

__all__ = ["check_and_record", "records_folder"]

_MAX_RECORD_BYTES = 64 * 1024


def records_folder() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mparticle-dsr" / "request-ids"


def _mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, json.dumps(parts).encode(), hashlib.sha256).hexdigest()


def _record(request: DsrRequest, key: bytes) -> dict[str, Any]:
    return {"regulation": request.regulation,
            "identities": {name: _mac(key, "identity", name, value) for name, value in request.identities.items()}}


def _differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs, by name only (the values are not known here, and would not be shown)."""
    found = [f"its regulation was {saved.get('regulation')}, not {now['regulation']}"] \
        if saved.get("regulation") != now["regulation"] else []
    before, after = saved.get("identities") or {}, now["identities"]
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            found.append(f"its {name} was {'not given' if name not in before else 'another value'}"
                         + (", here it is not given" if name not in after else ""))
    return found


def check_and_record(request: DsrRequest, key: bytes) -> None:
    """Refuse ``request`` if its id was sent before for another subject (or regulation); otherwise
    remember it (before anything is sent). Best effort for the record itself: a folder that cannot be used is
    not a reason to refuse a request, only to lose this check."""
    name = _mac(key, "request_id", request.type, request.request_id)[:40] + ".json"
    now = _record(request, key)
    try:
        with Folder.open(records_folder()) as folder:
            raw = folder.read(name, _MAX_RECORD_BYTES)
            saved = json.loads(raw) if raw else None
            if isinstance(saved, dict):
                differences = _differences(saved, now)
                if differences:
                    raise CliError(f"request id {request.request_id} was already used by this command line for "
                                   f"another {request.type} request: {'; '.join(differences)}. Nothing was sent.",
                                   ["a request id names one request: give a new --request-id for this one, or "
                                    "the first request's options to resume it"], kind="request_id_reused")
                return
            folder.write(name, (json.dumps(now, sort_keys=True) + "\n").encode())
    except (MParticleError, ValueError, OSError):
        return
