"""``access``, ``delete``, ``opt-out`` and ``check``: one privacy request by hand, as a host would run it.

The request you see is the request that is sent. The command line, the config and the state file must
agree, or the command refuses before anything leaves (exit 2) and names the difference. Every local check
(options, config, environment, state file, output directory) runs first; the request, with its id, is
printed and stored before the first call to mParticle, so any request can be resumed.
"""

from __future__ import annotations

import re
import shlex
import signal
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.text import Text

from connector_mparticle.cli.config_file import load_connector, setup_logging
from connector_mparticle.cli.exits import (
    EXIT_CODES,
    EXIT_COMPLETED,
    EXIT_FAILED,
    EXIT_PENDING,
    CliError,
    exit_code_for,
)
from connector_mparticle.cli.identifiers import (
    check_email,
    check_mpid,
    check_phone,
    check_request_id,
    check_value,
    matching_warnings,
)
from connector_mparticle.cli.render import (
    checks_table,
    describe_request,
    mask_identifier,
    print_copyable,
    print_result,
    waiting_line,
)
from connector_mparticle.cli.request_ids import check_and_record
from connector_mparticle.cli.state_file import Saved, StateFile
from connector_mparticle.errors import MParticleError
from connector_mparticle.files import Folder, folder_path
from connector_mparticle.flows.subject import Subject
from connector_mparticle.settings import Settings
from dsr_framework import DsrRequest, Result
from dsr_framework.drive import drive
from dsr_framework.host import ConnectorHandle
from dsr_framework.text import for_people, json_for_people
from dsr_framework.validation import SchemaViolation

__all__ = ["IDENTITY_OPTIONS", "IdentityOption", "check_command", "request_command"]

#: How long a command without ``--wait`` waits for another command to release the state file.
LOCK_WAIT_SECONDS = 10.0
_CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: The request categories that name a device (``--device-id TYPE=VALUE``), as the OpenDSR spec names them.
DEVICE_CATEGORIES = ("ios_advertising_id", "ios_vendor_id", "android_advertising_id", "android_id",
                     "fire_advertising_id", "roku_advertising_id", "roku_publisher_id", "microsoft_advertising_id",
                     "microsoft_publisher_id", "push_token")


@dataclass(frozen=True)
class IdentityOption:
    """One subject-identifier option: the request's identity name, its flag, and how a bad value is described."""

    name: str
    flag: str
    metavar: str
    help: str
    problem: Callable[[str], str | None] = lambda _: None

    @property
    def param(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


#: Adding an identifier option is one row here; any other category goes through --device-id or --identity.
IDENTITY_OPTIONS: tuple[IdentityOption, ...] = (
    IdentityOption("email", "--email", "ADDR", "The subject's email address.", check_email),
    IdentityOption("customer_id", "--customer-id", "ID",
                   "The subject's customer id (mParticle's default login id: without it, mParticle cannot reach a "
                   "known user's profile).", check_value),
    IdentityOption("phone", "--phone", "NUMBER",
                   "The subject's phone number (mParticle mobile_number, unless the config's 'identities' says "
                   "otherwise).", check_phone),
    IdentityOption("vendor_id", "--mpid", "MPID",
                   "The subject's mParticle ID (sent in its own request, as mParticle requires; verified through "
                   "the Profile API when 'profile' is configured).", check_mpid),
)


def _pairs(flag: str, allowed: tuple[str, ...] | None) -> Callable[[click.Context, click.Parameter, tuple[str, ...]],
                                                                    dict[str, str]]:
    """A click callback reading repeated ``TYPE=VALUE`` options into a dict (TYPE from ``allowed``, if given)."""

    def parse(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
        out: dict[str, str] = {}
        for text in values:
            kind, sep, value = text.partition("=")
            if not sep or not _CATEGORY.fullmatch(kind):
                raise click.BadParameter(f"{for_people(text)!r}: expected TYPE=VALUE, like {flag.removeprefix('--')} "
                                         f"{(allowed or ('app_user_id',))[0]}=abc123")
            if allowed is not None and kind not in allowed:
                close = ", ".join(allowed)
                raise click.BadParameter(f"{kind!r} is not a device id type; use one of {close}")
            if (problem := check_value(value)) is not None:
                raise click.BadParameter(f"{kind}: the value {problem}")
            if kind in out and out[kind] != value:
                raise click.BadParameter(f"{kind} is given twice with different values")
            out[kind] = value
        return out

    return parse


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


# --- building the request and checking it against the state file ------------------------------------------


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
                          datetime.now(UTC), output_dir, inv.due)
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
    if inv.identities:
        found += _identity_differences(inv.identities, saved.identities)
    if inv.out is not None and str(folder_path(inv.out)) != saved.output_dir:
        found.append(f"its --out is {saved.output_dir}, not {folder_path(inv.out)}" if saved.output_dir else
                     f"it was started without --out, so nothing would be written to {folder_path(inv.out)}")
    return found


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
        args += ["--request-id", request.request_id, "--regulation", request.regulation]
        for name, value in sorted(request.identities.items()):
            args += _arguments_for(name, value)
        if request.output_dir is not None:
            args += ["--out", request.output_dir]
        if request.due_at is not None:
            args += ["--due", request.due_at.isoformat()]
    if inv.wait:
        args.append("--wait")
    return shlex.join(args)


# --- running it -------------------------------------------------------------------------------------------


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


def _finish(run: _Run, result: Result) -> NoReturn:
    inv = run.inv
    if inv.as_json:
        click.echo(json_for_people(result.to_dict()))
    else:
        print_result(run.console, result, run.request, inv.verbose)
    if not result.final:
        print_copyable(run.console, "Resume it with:", resume_command(inv, run.request))
    sys.exit(exit_code_for(result))


def _interrupted(run: _Run, result: Result | None) -> NoReturn:
    what = f" (mParticle says {result.summary.get('mparticle_status')})" if result and result.summary.get(
        "mparticle_status") else ""
    run.console.print(Text(for_people(f"Stopped: request {run.request.request_id} is not finished{what}."),
                           style="yellow"), soft_wrap=True)
    print_copyable(run.console, "Resume the same request (it is never submitted twice) with:",
                   resume_command(run.inv, run.request))
    if run.inv.as_json:
        document = result.to_dict() if result is not None else {"error": {
            "kind": "interrupted", "message": f"stopped: request {run.request.request_id} is not finished",
            "hints": [resume_command(run.inv, run.request)]}, "exit_code": EXIT_PENDING}
        click.echo(json_for_people(document))
    sys.exit(EXIT_PENDING)


def run_request(inv: Invocation) -> NoReturn:
    """Check everything local, store and print the request, then drive it (see the module docstring)."""
    console = Console(stderr=inv.as_json)
    notes = Console(stderr=True)
    setup_logging(inv.verbose)
    loaded = load_connector(inv.config, inv.env_file, lambda text: _warn(notes, text))
    with ExitStack() as stack:
        state = _open_state(inv, loaded.state_key, stack, notes)
        saved = state.read() if state is not None else None
        request = resolve_request(inv, saved, loaded.default_regulation)
        previous = saved.result if saved is not None else None
        run = _Run(inv, loaded.handle, request, console, state, _Stop())
        if previous is not None and previous.final:
            console.print(Text(for_people(f"request {request.request_id} is already {previous.status}; "
                                          f"delete {inv.state} to run it again")))
            _finish(run, previous)
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
                                                lambda text: notes.print(Text(for_people(text)), soft_wrap=True)))


def _warn(notes: Console, text: str) -> None:
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
            _interrupted(run, result)
        if run.stop.requested and not result.final:
            _interrupted(run, result)
    _finish(run, result)


config_option = click.option("--config", "config", required=True, envvar="MPARTICLE_DSR_CONFIG",
                             type=click.Path(exists=True, dir_okay=False, path_type=Path),
                             help="Connector settings (YAML or JSON); secrets as ${NAME} references.")
env_option = click.option("--env-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                          help="KEY=VALUE file supplying ${NAME} references (instead of the environment).")


def _checked(option: IdentityOption) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], str | None]:
    """A click callback that refuses a malformed identifier while the command line is parsed, and a flag given
    twice with different values: an OpenDSR request carries one value per identity type, and sending only the
    last one (as a plain click option would) would run the request for someone other than the person named
    first."""

    def check(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> str | None:
        for value in values:
            if (problem := option.problem(value)):
                raise click.BadParameter(problem)
        if len(set(values)) > 1:
            raise click.BadParameter(f"given {len(values)} times with different values; a request is for one "
                                     f"subject and carries one {option.name} (run one request per value)")
        return values[0] if values else None

    return check


def _due_date(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """``--due``: an ISO 8601 date (its last second, UTC) or date-time (UTC when it names no zone)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{for_people(value)!r} is not a date like 2026-12-31 or 2026-12-31T17:00:00Z") \
            from None
    if len(value) == 10:
        parsed = parsed.replace(hour=23, minute=59, second=59)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _check_request_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and (problem := check_request_id(value)) is not None:
        raise click.BadParameter(problem)
    return value


def _check_out(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """The output folder is kept in the request and its state file as text: a name that is not text (bytes that
    are not UTF-8) would be written but could not be read back to resume, so it is refused before anything is
    sent."""
    if value is not None:
        try:
            str(value).encode("utf-8")
        except UnicodeEncodeError:
            raise click.BadParameter("the folder's name is not valid UTF-8 text; choose another name") from None
    return value


_OUT_HELP = {
    "access": "Directory for the results zip, the summary and mParticle's signed receipt (default: the current one).",
    "portability": "Directory for the results zip, the JSON and CSV tables, the summary and the receipt (default: the "
                   "current one).",
    "deletion": "Directory for mParticle's signed receipt, mparticle-erasure-…-receipt.json (default: none; the "
                "receipt is always in the result).",
}


def _request_options(kind: str) -> list[Callable[[Any], Any]]:
    """The options of a request command, in the order ``--help`` shows them."""
    options = [
        config_option, env_option,
        *(click.option(o.flag, o.param, metavar=o.metavar, help=o.help, callback=_checked(o), multiple=True)
          for o in IDENTITY_OPTIONS),
        click.option("--device-id", "device_id", multiple=True, metavar="TYPE=VALUE",
                     callback=_pairs("--device-id", DEVICE_CATEGORIES),
                     help=f"A device id of the subject (repeatable). TYPE: {', '.join(DEVICE_CATEGORIES)}."),
        click.option("--identity", "identity", multiple=True, metavar="TYPE=VALUE", callback=_pairs("--identity", None),
                     help="Any other identifier (repeatable): an mParticle identity type such as other3, or a "
                          "category the config's 'identities' maps (like app_user_id)."),
        click.option("--request-id", callback=_check_request_id,
                     help="Your id for the request (default: a new one, printed before anything is sent). "
                          "Reusing an id resumes that request; it is never submitted twice."),
        click.option("--regulation", type=click.Choice(["gdpr", "ccpa"]),
                     help="The regulation sent to mParticle, stored and shown (default: the config's "
                          "'regulation', else gdpr)."),
        click.option("--due", callback=_due_date, metavar="DATE",
                     help="When the request must be answered (ISO 8601: 2026-12-31 or 2026-12-31T17:00:00Z; a date "
                          "means its end, UTC). Default: the regulation's (GDPR a month, CCPA 45 days). The result "
                          "says whether mParticle's expected completion puts it at risk."),
        click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
                     help="Store the request and its state here (locked while in use); run again with it to "
                          "resume."),
        click.option("--wait", is_flag=True, help="Keep checking until the result is final (Ctrl-C stops; "
                     "the printed command resumes)."),
        click.option("--json", "as_json", is_flag=True, help="Print the result (or the error) as JSON."),
        click.option("--verbose", "-v", is_flag=True, help="Show the audit trail and log messages."),
    ]
    if kind in _OUT_HELP:
        options.append(click.option("--out", type=click.Path(file_okay=False, path_type=Path), help=_OUT_HELP[kind],
                                    callback=_check_out))
    return options


def _identities(values: dict[str, Any]) -> dict[str, str]:
    """Take the subject's identifiers out of a command's ``values``: one per option, then the TYPE=VALUE pairs."""
    identities = {option.name: values[option.param] for option in IDENTITY_OPTIONS
                  if values.get(option.param) is not None}
    for option in IDENTITY_OPTIONS:
        values.pop(option.param, None)
    for extra in (values.pop("device_id"), values.pop("identity")):
        for category, value in extra.items():
            if identities.get(category, value) != value:
                raise click.UsageError(f"{category} is given twice with different values")
            identities[category] = value
    return identities


def request_command(kind: str, name: str, summary: str) -> click.Command:
    """The click command for one request type; identity options come from :data:`IDENTITY_OPTIONS`."""

    def command(**values: Any) -> None:
        identities = _identities(values)
        run_request(Invocation(command=name, kind=kind, identities=identities, **values))

    for option in reversed(_request_options(kind)):
        command = option(command)
    return click.command(name, help=summary, epilog=EXIT_CODES)(command)


@click.command("check", epilog=EXIT_CODES)
@config_option
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print the result (or the error) as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Show log messages.")
def check_command(config: Path, env_file: Path | None, as_json: bool, verbose: bool) -> None:
    """Test the DSR, Events and Identity credentials (one result per API)."""
    setup_logging(verbose)
    notes = Console(stderr=True)
    loaded = load_connector(config, env_file, lambda text: _warn(notes, text))
    result = loaded.handle.test_connection()
    if as_json:
        click.echo(json_for_people(result.to_dict()))
    else:
        Console().print(checks_table(result))
    sys.exit(EXIT_COMPLETED if result.ok else EXIT_FAILED)
