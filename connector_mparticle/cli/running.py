"""Running one request by hand, as a host would: every local check first (config, environment, state file, output
folder, the identifiers mParticle can be sent), the request stored and printed before the first call to
mParticle, then the hook called (and, with ``--wait``, called again at each ``next_check_at``). Ctrl-C and
SIGTERM stop at once with the command that resumes.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any, NoReturn

from rich.console import Console
from rich.text import Text

from connector_mparticle.cli.config_file import load_connector, setup_logging
from connector_mparticle.cli.exits import CliError
from connector_mparticle.cli.identifiers import matching_warnings
from connector_mparticle.cli.invocation import Invocation, resolve_request
from connector_mparticle.cli.outcome import finish, interrupted
from connector_mparticle.cli.render import describe_request, note_to, waiting_line
from connector_mparticle.cli.request_ids import check_and_record
from connector_mparticle.cli.state_file import StateFile
from connector_mparticle.errors import MParticleError
from connector_mparticle.files import Folder
from connector_mparticle.flows.subject import Subject
from connector_mparticle.settings import Settings
from dsr_framework import DsrRequest, Result
from dsr_framework.drive import drive
from dsr_framework.host import ConnectorHandle
from dsr_framework.text import for_people

__all__ = ["LOCK_WAIT_SECONDS", "consent_warnings", "run_request", "warn", "what_is_sent"]

#: How long a command without ``--wait`` waits for another command to release the state file.
LOCK_WAIT_SECONDS = 10.0


def _prepare_output_dir(path: str) -> None:
    """Create the output directory (0700) and prove it is the user's alone and writable, before anything is
    sent (:mod:`connector_mparticle.files`: a link, a file, or a folder others can write is refused)."""
    try:
        with Folder.open(path) as folder:
            folder.probe()
    except MParticleError as exc:
        raise CliError(f"cannot write the results to {path}: {exc.message}", kind="output_dir") from None


class _Stop:
    """Ctrl-C (or SIGTERM) while a request runs stops at once: while waiting, the wait loop notices within 0.25 s;
    during a call to mParticle, the call is abandoned. Both are safe: the state file holds the last state, and
    the request's mParticle ids derive from its request id, so the printed command finds a submission the
    abandoned call made and never sends it twice."""

    def __init__(self) -> None:
        self.requested = False
        self.busy = False  #: a call to mParticle is under way

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        first = not self.requested
        self.requested = True
        if self.busy or not first:
            raise KeyboardInterrupt


@contextmanager
def _ctrl_c(stop: _Stop) -> Iterator[_Stop]:
    """Ctrl-C, and SIGTERM the same way (a service manager or ``kill`` stopping the command): the state is saved
    and the command that resumes is printed (exit 3), rather than the process vanishing mid-request."""
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class _Run:
    """One request being driven: where progress goes and where each result is saved."""

    inv: Invocation
    handle: ConnectorHandle
    request: DsrRequest
    console: Console
    state: StateFile | None
    stop: _Stop

    def call(self, state: Any) -> Result:
        self.stop.busy = True
        try:
            result = self.handle.handle(self.request, state)
        finally:
            self.stop.busy = False
        if self.state is not None:
            try:
                self.state.write(self.request, result)
            except CliError as exc:  # after a remote call: say how to resume without the file
                self.console.print(Text(for_people(exc.message), style="red"))
                self.inv, self.state = replace(self.inv, state=None), None
        return result

    def wait(self, result: Result) -> Result:
        """Check again at each ``next_check_at`` until the result is final or Ctrl-C is pressed."""
        live = self.console.is_terminal
        printed: list[Result] = []

        def show(pending: Result, left: float) -> None:
            if status is not None:
                status.update(Text(f"{waiting_line(self.request, pending)} · Ctrl-C stops (resumable)"))
            elif not printed or printed[-1] is not pending:  # one line per pending result, not per tick
                printed.append(pending)
                self.console.print(Text(waiting_line(self.request, pending)), soft_wrap=True, highlight=False)

        with self.console.status("") if live else nullcontext() as status:
            return drive(self.call, result=result, on_wait=show, stop=lambda: self.stop.requested).result


def run_request(inv: Invocation) -> NoReturn:
    """Check everything local, store and print the request, then drive it (see the module docstring)."""
    console = Console(stderr=inv.as_json)
    notes = Console(stderr=True)
    setup_logging(inv.verbose)
    loaded = load_connector(inv.config, inv.env_file, lambda text: warn(notes, text))
    with ExitStack() as stack:
        state = _open_state(inv, loaded.state_key, stack, notes)
        saved = state.read() if state is not None else None
        request = resolve_request(inv, saved, loaded.default_regulation)
        previous = saved.result if saved is not None else None
        run = _Run(inv, loaded.handle, request, console, state, _Stop())
        if previous is not None and previous.final:
            console.print(Text(for_people(f"request {request.request_id} is already {previous.status}; "
                                          f"delete {inv.state} to run it again")))
            finish(inv, console, request, previous)
        if request.output_dir is not None:
            _prepare_output_dir(request.output_dir)
        if state is not None:
            state.write(request, previous)
        sent_as, not_sent = what_is_sent(request, loaded.settings)
        check_and_record(request, loaded.state_key)
        where = f" (state: {inv.state})" if inv.state is not None else ""
        for warning in [*matching_warnings(request.identities), *consent_warnings(request, loaded.settings)]:
            notes.print(Text.assemble(("warning: ", "yellow"), warning), soft_wrap=True)
        console.print(Text(for_people(f"{'resuming' if saved is not None else 'sending'} "
                                      f"{describe_request(request, sent_as, not_sent)}{where}")),
                      soft_wrap=True, highlight=False)
        _drive(run, previous)


def what_is_sent(request: DsrRequest, settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """Each category that is sent, with the mParticle type it is sent as, and each that is not, with why; a
    category that is no mParticle type and that the config does not map is refused here, before anything is
    sent (the connector would drop it and run the request without it)."""
    try:
        subject = Subject.of(request, settings)
    except MParticleError as exc:
        raise CliError(f"{exc.message}; nothing was sent", kind="configuration") from None
    unknown = sorted(c for c, _ in subject.unused if c not in settings.identity_mapping)
    if unknown:
        raise CliError(f"{', '.join(unknown)} is not an mParticle identity type, and the config's 'identities' "
                       "does not map it; nothing was sent",
                       ["use an mParticle type (--identity other3=…), a --device-id type, or map the category in "
                        "the config's 'identities' (like {app_user_id: other3})"])
    return {i.category: i.kind.name for i in subject.identifiers}, dict(subject.unused)


def consent_warnings(request: DsrRequest, settings: Settings) -> list[str]:
    """An opt-out records what ``opt_out`` configures, whatever the request's regulation: say when the two do
    not match, so nobody reads a GDPR opt-out as recording a GDPR purpose that is not configured."""
    if request.type != "opt_out":
        return []
    configured = settings.opt_out
    if request.regulation == "gdpr" and not configured.gdpr_purposes:
        return ["this is a GDPR opt-out, but the config's opt_out.gdpr_purposes lists no purpose: only the CCPA "
                "data-sale opt-out is recorded" if configured.ccpa_data_sale_opt_out else
                "this is a GDPR opt-out, but the config's opt_out.gdpr_purposes lists no purpose"]
    if request.regulation == "ccpa" and configured.gdpr_purposes:
        purposes = ", ".join(configured.gdpr_purposes)
        return [f"this is a CCPA opt-out, but the config's opt_out.gdpr_purposes ({purposes}) are recorded as "
                "refused too: every configured purpose is recorded, whatever the regulation"]
    return []


def _open_state(inv: Invocation, key: bytes, stack: ExitStack, notes: Console) -> StateFile | None:
    """The ``--state`` file, locked for as long as ``stack`` is open (None without ``--state``)."""
    if inv.state is None:
        return None
    return stack.enter_context(StateFile.locked(inv.state, key, None if inv.wait else LOCK_WAIT_SECONDS,
                                                note_to(notes)))


def warn(notes: Console, text: str) -> None:
    """A warning for the person at the terminal (on stderr), its text escaped."""
    notes.print(Text.assemble(("warning: ", "yellow"), for_people(text)), soft_wrap=True)


def _drive(run: _Run, previous: Result | None) -> NoReturn:
    """Call the hook (again with ``previous``'s state), and with ``--wait`` until the result is final; Ctrl-C
    stops with the command that resumes."""
    result: Result | None = None
    with _ctrl_c(run.stop):
        try:
            result = run.call(dict(previous.state) if previous is not None and previous.state else None)
            if run.inv.wait:
                result = run.wait(result)
        except KeyboardInterrupt:
            interrupted(run.inv, run.console, run.request, result)
        if run.stop.requested and not result.final:
            interrupted(run.inv, run.console, run.request, result)
    finish(run.inv, run.console, run.request, result)
