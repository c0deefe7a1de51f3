"""``batch``: a backlog of requests from a CSV or JSON Lines file, planned against mParticle's limits, resumable,
with a progress bar and a report.

Everything local is checked before the first call to mParticle: options, config, environment, every line of the
file, the backlog folder (private, not in use, not holding another request under the same id), the output
folders and, with ``--fleet``, the broker. The plan is printed before anything is sent; "sending" and
"resuming" are printed only when a request is due now. Ctrl-C or SIGTERM stops after the calls in flight (a
second Ctrl-C at once); the printed command resumes, and nothing is ever sent twice.

The backlog (:mod:`dsr_framework.batch`) lives in a folder beside the file (``FILE.batch``, or ``--store``):
the store, ``report.csv`` and ``report.json``, and ``files/`` for results and receipts; 0700, its files 0600.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.text import Text

from connector_mparticle.cli.config_file import LoadedConnector, load_connector, setup_logging
from connector_mparticle.cli.exits import (
    EXIT_CODES,
    EXIT_COMPLETED,
    EXIT_FAILED,
    EXIT_PENDING,
    EXIT_UNVERIFIED,
    CliError,
    StateBusy,
)
from connector_mparticle.cli.fleet import FleetSetup, fleet_setup
from connector_mparticle.cli.render import print_copyable
from connector_mparticle.cli.request_options import config_option, env_option
from connector_mparticle.settings import Settings
from dsr_framework.batch import (
    Backlog,
    BacklogBusy,
    FileError,
    InputError,
    ModeMismatch,
    Plan,
    StopFlag,
    StoreConflict,
    plan_backlog,
    read_requests,
)
from dsr_framework.batch.plan import Open
from dsr_framework.batch.progress import display_for
from dsr_framework.batch.report import report_lines, verification_counts
from dsr_framework.batch.runner import Admission, ExecutorStopped, Outcome
from dsr_framework.display import human_duration
from dsr_framework.files import Folder
from dsr_framework.models import DsrRequest

__all__ = ["BatchInvocation", "batch_command", "resume_command", "run_batch"]

LOCAL_WORKERS = 8
FLEET_IN_FLIGHT = 32
IDLE_SECONDS = 60.0


@dataclass(frozen=True)
class BatchInvocation:
    """What the command line asked for."""

    file: Path
    config: Path
    env_file: Path | None
    store: Path | None
    workers: int | None
    dry_run: bool
    wait: bool
    fleet: bool
    as_json: bool
    verbose: bool

    @property
    def folder(self) -> Path:
        return (self.store or self.file.with_name(self.file.name + ".batch")).absolute()

    @property
    def in_flight(self) -> int:
        return self.workers or (FLEET_IN_FLIGHT if self.fleet else LOCAL_WORKERS)


def resume_command(inv: BatchInvocation) -> str:
    """The command that carries the same backlog on."""
    args = ["mparticle-dsr", "batch", str(inv.file), "--config", str(inv.config)]
    if inv.env_file is not None:
        args += ["--env-file", str(inv.env_file)]
    if inv.store is not None:
        args += ["--store", str(inv.store)]
    if inv.workers is not None:
        args += ["--workers", str(inv.workers)]
    args += [flag for flag, on in (("--fleet", inv.fleet), ("--wait", inv.wait)) if on]
    return shlex.join(args)


# --- everything local, before the first call ---------------------------------------------------------------


def _read(inv: BatchInvocation, loaded: LoadedConnector) -> list[DsrRequest]:
    defaults = Backlog.defaults_for(inv.folder, loaded.default_regulation)
    try:
        return read_requests(inv.file, defaults)
    except InputError as exc:
        raise CliError(exc.shown, ["see `mparticle-dsr batch --help` for the columns"], kind="input") from None


def _writable(folders: set[str]) -> None:
    """Create each output folder (0700, through :mod:`dsr_framework.files`: refused when another user could
    change it or a folder above it) and prove it is writable."""
    for folder in sorted(folders):
        try:
            with Folder.open(folder) as opened:
                opened.probe()
        except FileError as exc:
            raise CliError(f"cannot write result files to {folder}: {exc.message}", kind="output_dir") from None


@contextlib.contextmanager
def _backlog(inv: BatchInvocation) -> Iterator[Backlog]:
    try:
        with Backlog.open(inv.folder) as backlog:
            yield backlog
    except BacklogBusy as exc:
        raise StateBusy(f"{exc}. Run this again when that command has finished.") from None
    except (FileError, OSError) as exc:
        raise CliError(f"cannot use the backlog folder {inv.folder}: {exc}", kind="store") from None


def _import(backlog: Backlog, requests: list[DsrRequest], console: Console, inv: BatchInvocation) -> None:
    try:
        imported = backlog.add(requests)
    except StoreConflict as exc:
        raise CliError(f"{inv.folder} holds another backlog: {exc}",
                       ["give this file its own --store folder, or keep the request ids of the first one"],
                       kind="store_mismatch") from None
    if imported.added and imported.known:
        console.print(f"{imported.added:,} new request(s) added to the {imported.known:,} already in {inv.folder}",
                      soft_wrap=True, highlight=False)
    missing = backlog.store.counts().total - imported.added - imported.known
    if missing > 0:
        console.print(f"{missing:,} request(s) in {inv.folder} are not in {inv.file.name} any more: carried on too",
                      soft_wrap=True, highlight=False)


def _limits(settings: Settings) -> dict[str, float]:
    return dict(settings.throttle.limits)


def _planner(loaded: LoadedConnector, settings: Settings) -> Callable[[Open], Plan]:
    manifest = loaded.handle.manifest
    return lambda open_requests: plan_backlog(open_requests, manifest, settings.throttle.target_share,
                                              _limits(settings))


def _print_plan(console: Console, plan: Plan) -> None:
    console.print("[bold]Plan[/]")
    for line in plan.lines(human_duration):
        console.print(line, soft_wrap=True, highlight=False, markup=False)


def _dry_run(inv: BatchInvocation, loaded: LoadedConnector, settings: Settings, requests: list[DsrRequest],
             console: Console) -> NoReturn:
    """The plan for the file (with what an existing backlog already holds), and nothing else."""
    pending: Open = Counter((r.type, len(r.identities), False) for r in requests)
    if Backlog.exists(inv.folder):
        with _backlog(inv) as backlog:
            conflicts = backlog.store.conflicts(requests)
            if conflicts:
                raise CliError(f"{inv.folder} holds another backlog: {StoreConflict(conflicts)}", kind="store_mismatch")
            pending = backlog.store.open_by_type() + Counter(
                (r.type, len(r.identities), False) for r in requests if not backlog.store.holds(r.request_id))
    plan = _planner(loaded, settings)(pending)
    _print_plan(console, plan)
    console.print("dry run: nothing was sent")
    if inv.as_json:
        click.echo(json.dumps({"plan": _plan_document(plan), "exit_code": EXIT_COMPLETED}, indent=2))
    sys.exit(EXIT_COMPLETED)


def _plan_document(plan: Plan) -> dict[str, Any]:
    binding = plan.binding
    return {"requests": plan.requests, "to_start": dict(plan.to_start), "under_way": dict(plan.under_way),
            "calls": {b.api: b.calls for b in plan.budgets if b.calls},
            "binding": None if binding is None else {"api": binding.api, "limit": binding.limit,
                                                     "window_seconds": binding.window_seconds,
                                                     "allowed": binding.allowed},
            "send_seconds": round(plan.send_seconds, 1), "eta_seconds": round(plan.eta_seconds, 1)}


# --- running -----------------------------------------------------------------------------------------------


class _Signals:
    """Ctrl-C and SIGTERM: stop after the calls in flight; a second one stops at once."""

    def __init__(self, stop: StopFlag, console: Console) -> None:
        self.stop, self.console = stop, console

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.stop.request()
        if self.stop.now:
            self.console.print("\nstopping now (the calls in flight resume from the stored state)")
        else:
            self.console.print("\nstopping after the calls in flight (Ctrl-C again to stop at once)")

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {number: signal.signal(number, self) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def _announce(backlog: Backlog, plan: Plan, inv: BatchInvocation, console: Console, resumed: bool) -> None:
    """Say what is about to happen: "sending"/"resuming" only when a request is due now."""
    store, now = backlog.store, time.time()
    check, waiting = store.next_check(), store.has_new()
    if check is None and not waiting:
        console.print(f"nothing to send: all {store.counts().total:,} request(s) are final")
        return
    open_requests = store.counts().open
    if (waiting and Admission(plan, store, now).room) or (check is not None and check <= now):
        where = f"on the fleet ({inv.in_flight} in flight)" if inv.fleet else f"({inv.in_flight} at a time)"
        console.print(f"{'resuming' if resumed else 'sending'} {open_requests:,} request(s) {where}; Ctrl-C stops "
                      "(resumable)", soft_wrap=True, highlight=False)
        return
    console.print(f"{open_requests:,} request(s) not final; nothing is due now: {_why_idle(check, waiting, now)}",
                  soft_wrap=True, highlight=False)


def _why_idle(check: float | None, waiting: bool, now: float) -> str:
    why = [f"the next check is in {human_duration(check - now)}"] if check is not None else []
    if waiting:
        why.append("new requests wait for room under a daily cap")
    return "; ".join(why)


def _meter(loaded: LoadedConnector) -> Any:
    from connector_mparticle.plugin import call_meter

    return call_meter(loaded.config)


def _run(backlog: Backlog, inv: BatchInvocation, loaded: LoadedConnector, settings: Settings,
         fleet: FleetSetup | None, console: Console) -> Outcome:
    stop = StopFlag()
    display = display_for(Console(stderr=True))
    began = time.monotonic()
    with _Signals(stop, console).installed():
        try:
            if fleet is not None:
                return backlog.run(None, _planner(loaded, settings), executor=fleet.executor(backlog, inv.in_flight),
                                   display=display, stop=stop, wait=inv.wait, rate=fleet.rate)
            return backlog.run(loaded.handle.handle, _planner(loaded, settings), workers=inv.in_flight,
                               display=display, stop=stop, wait=inv.wait, meter=_meter(loaded))
        except ExecutorStopped as exc:
            console.print(f"[red]stopped: {exc}[/]", soft_wrap=True, highlight=False)
            return Outcome(backlog.store.counts(), True, None, time.monotonic() - began)
        finally:
            display.close()


def _finish(inv: BatchInvocation, outcome: Outcome, reports: tuple[Path, Path], unverified: int,
            console: Console) -> NoReturn:
    counts = outcome.counts
    console.print(f"{counts.completed:,} completed ({unverified:,} unverified) · {counts.failed:,} failed · "
                  f"{counts.open:,} not final ({human_duration(outcome.seconds)})", highlight=False)
    print_copyable(console, "Report:", str(reports[0]))
    console.print(Text(f"  {reports[1]}"), soft_wrap=True, highlight=False)
    code = EXIT_PENDING if counts.open else EXIT_FAILED if counts.failed else \
        EXIT_UNVERIFIED if unverified else EXIT_COMPLETED
    if counts.open:
        why = "stopped" if outcome.stopped else "not final yet"
        print_copyable(console, f"{counts.open:,} request(s) {why}; carry on (nothing is sent twice) with:",
                       resume_command(inv))
    if inv.as_json:
        click.echo(json.dumps({"outcomes": {"completed": counts.completed, "failed": counts.failed,
                                            "not_final": counts.open, "unverified": unverified},
                               "stopped": outcome.stopped,
                               "seconds": round(outcome.seconds, 1), "report_csv": str(reports[0]),
                               "report_json": str(reports[1]),
                               "resume": resume_command(inv) if counts.open else None, "exit_code": code}, indent=2))
    sys.exit(code)


def run_batch(inv: BatchInvocation) -> NoReturn:
    """Check everything local, print the plan, then drive the backlog (see the module docstring)."""
    console = Console(stderr=inv.as_json)
    notes = Console(stderr=True)
    setup_logging(inv.verbose)
    loaded = load_connector(inv.config, inv.env_file, lambda text: notes.print(f"[yellow]warning:[/] {text}",
                                                                             soft_wrap=True, highlight=False))
    settings = loaded.settings
    requests = _read(inv, loaded)
    fleet = fleet_setup(loaded, settings) if inv.fleet else None
    if inv.dry_run:
        _dry_run(inv, loaded, settings, requests, console)
    _writable({r.output_dir for r in requests if r.output_dir})
    with _backlog(inv) as backlog:
        resumed = backlog.store.counts().total > 0
        _import(backlog, requests, console, inv)
        _claim_mode(backlog, inv)
        plan = backlog.plan(loaded.handle.manifest, settings.throttle.target_share, _limits(settings))
        _print_plan(console, plan)
        _announce(backlog, plan, inv, console, resumed)
        outcome = _run(backlog, inv, loaded, settings, fleet, console)
        reports = backlog.write_reports()
        unverified = verification_counts(report_lines(backlog.store)).get("unverified", 0)
    _finish(inv, outcome, reports, unverified, console)


def _claim_mode(backlog: Backlog, inv: BatchInvocation) -> None:
    try:
        backlog.claim_mode("fleet" if inv.fleet else "local")
    except ModeMismatch as exc:
        flag = "with --fleet" if not inv.fleet else "without --fleet"
        raise CliError(str(exc), [f"run it {flag}, or give this file a new --store folder"], kind="mode") from None


def _positive(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 256:
        raise click.BadParameter("use 1 to 256")
    return value


@click.command("batch", epilog=EXIT_CODES)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@env_option
@click.option("--store", type=click.Path(file_okay=False, path_type=Path),
              help="The backlog folder: store, reports and result files (default: FILE.batch beside FILE). Run "
                   "again with the same folder to resume.")
@click.option("--dry-run", is_flag=True, help="Print the plan (calls per API, the binding limit, the ETA) and stop.")
@click.option("--workers", type=int, callback=_positive,
              help=f"Requests driven at once: threads here (default {LOCAL_WORKERS}), or tasks in flight on the "
                   f"fleet (default {FLEET_IN_FLIGHT}). The throttle paces the calls either way.")
@click.option("--wait", is_flag=True, help="Keep running until every request is final (without it: stop once "
              f"nothing is due within {IDLE_SECONDS:.0f} s, exit 3, and carry on later).")
@click.option("--fleet", is_flag=True, help="Send the steps to Celery workers (`mparticle-dsr worker`) through "
              "the Redis of throttle.redis_url, instead of threads here.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome (or the error) as JSON on stdout.")
@click.option("--verbose", "-v", is_flag=True, help="Show log messages.")
def batch_command(file: Path, config: Path, env_file: Path | None, store: Path | None, dry_run: bool,
                  workers: int | None, wait: bool, fleet: bool, as_json: bool, verbose: bool) -> None:
    """Run a backlog of requests from FILE (.csv or .jsonl): plan, progress, resume, report.

    CSV: a header, then one request per row. Columns request_id and type (access, deletion, opt_out) are
    required; regulation, submitted_at, due_at (RFC 3339) and output_dir are optional; every other column is an
    identifier category (email, customer_id, phone, push_token, ...). JSON Lines: one request per line, as
    request.schema.json describes. Nearest due dates go first.
    """
    run_batch(BatchInvocation(file, config, env_file, store, workers, dry_run, wait, fleet, as_json, verbose))

