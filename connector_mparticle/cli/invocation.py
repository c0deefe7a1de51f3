"""One request command's invocation: the request it runs (new, or the state file's when the command line agrees
with it, else the difference named) and the exact command that resumes it.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from connector_mparticle.cli.exits import CliError
from connector_mparticle.cli.render import mask_identifier
from connector_mparticle.cli.request_options import DEVICE_CATEGORIES, IDENTITY_OPTIONS
from connector_mparticle.cli.state_file import Saved
from connector_mparticle.files import folder_path
from dsr_framework import DsrRequest
from dsr_framework.models import format_time
from dsr_framework.validation import SchemaViolation

__all__ = ["Invocation", "resolve_request", "resume_command"]


@dataclass(frozen=True)
class Invocation:
    """What the command line asked for; ``None`` means "not given"."""

    command: str
    kind: str
    config: Path
    env_file: Path | None
    identities: dict[str, str]
    request_id: str | None
    regulation: str | None
    state: Path | None
    wait: bool
    as_json: bool
    verbose: bool
    out: Path | None = None
    due: datetime | None = None
    submitted: datetime | None = None


def _new_request(inv: Invocation, default_regulation: str) -> DsrRequest:
    if not inv.identities:
        flags = ", ".join(option.flag for option in IDENTITY_OPTIONS)
        raise CliError(f"say whose request this is: give {flags}, --device-id TYPE=VALUE or --identity TYPE=VALUE")
    output_dir = str(folder_path(inv.out)) if inv.out is not None else None
    if inv.kind in ("access", "portability") and output_dir is None:
        output_dir = str(folder_path("."))
    try:
        return DsrRequest(inv.request_id or f"cli-{uuid.uuid4()}", inv.kind,  # type: ignore[arg-type]
                          inv.regulation or default_regulation, dict(inv.identities),  # type: ignore[arg-type]
                          inv.submitted or datetime.now(UTC), output_dir, inv.due)
    except SchemaViolation as exc:
        raise CliError(str(exc)) from None


def _differences(inv: Invocation, saved: DsrRequest) -> list[str]:
    """Each way the command line contradicts the request in the state file, identifiers masked."""
    found = []
    if inv.request_id is not None and inv.request_id != saved.request_id:
        found.append(f"its request id is {saved.request_id}, not {inv.request_id}")
    if inv.kind != saved.type:
        found.append(f"it holds a {saved.type} request, not {inv.kind}")
    if inv.regulation is not None and inv.regulation != saved.regulation:
        found.append(f"its regulation is {saved.regulation}, not {inv.regulation}")
    found += _time_differences(inv, saved)
    if inv.identities:
        found += _identity_differences(inv.identities, saved.identities)
    if inv.out is not None and str(folder_path(inv.out)) != saved.output_dir:
        found.append(f"its --out is {saved.output_dir}, not {folder_path(inv.out)}" if saved.output_dir else
                     f"it was started without --out, so nothing would be written to {folder_path(inv.out)}")
    return found


def _time_differences(inv: Invocation, saved: DsrRequest) -> list[str]:
    """When the subject asked, if the command line says another time than the state file (to the millisecond)."""
    if inv.submitted is not None and format_time(inv.submitted) != format_time(saved.submitted_at):
        return [f"it was submitted {saved.submitted_at.isoformat()}, not {inv.submitted.isoformat()}"]
    return []


def _identity_differences(given: Mapping[str, str], saved: Mapping[str, str]) -> list[str]:
    """Each identifier that differs between the command line and the state file, masked."""
    found = []
    for name in sorted(set(given) | set(saved)):
        mine, theirs = given.get(name), saved.get(name)
        if mine != theirs:
            shown = mask_identifier(name, theirs) if theirs is not None else "none"
            here = mask_identifier(name, mine) if mine is not None else "not given"
            found.append(f"its subject's {_flag_for(name)} is {shown}, here it is {here}")
    return found


def resolve_request(inv: Invocation, saved: Saved | None, default_regulation: str) -> DsrRequest:
    """The request to run: the state file's (when the command line agrees with it) or a new one."""
    if saved is None:
        return _new_request(inv, default_regulation)
    differences = _differences(inv, saved.request)
    if differences:
        raise CliError(f"{inv.state} belongs to another request: " + "; ".join(differences),
                       ["use another --state file for this request, or leave out the options that differ "
                        "to resume the one in the file"], kind="state_mismatch")
    return saved.request


def _arguments_for(name: str, value: str) -> list[str]:
    """The command-line arguments that give identifier category ``name`` the value ``value``."""
    option = next((o for o in IDENTITY_OPTIONS if o.name == name), None)
    if option is not None:
        return [option.flag, value]
    return ["--device-id" if name in DEVICE_CATEGORIES else "--identity", f"{name}={value}"]


def _flag_for(name: str) -> str:
    """How the command line names identifier category ``name`` (for messages): ``--email``,
    ``--device-id push_token``."""
    flag, value = _arguments_for(name, "")
    return flag if not value else f"{flag} {name}"


def resume_command(inv: Invocation, request: DsrRequest) -> str:
    """The exact command that carries on with ``request`` (never one that would start a second request)."""
    args = ["mparticle-dsr", inv.command, "--config", str(inv.config)]
    if inv.env_file is not None:
        args += ["--env-file", str(inv.env_file)]
    if inv.state is not None:
        args += ["--state", str(inv.state)]
    else:
        args += ["--request-id", request.request_id, "--regulation", request.regulation,
                 "--submitted", request.submitted_at.isoformat()]  # its due date counts from it
        for name, value in sorted(request.identities.items()):
            args += _arguments_for(name, value)
        if request.output_dir is not None:
            args += ["--out", request.output_dir]
        if request.due_at is not None:
            args += ["--due", request.due_at.isoformat()]
    if inv.wait:
        args.append("--wait")
    return shlex.join(args)
