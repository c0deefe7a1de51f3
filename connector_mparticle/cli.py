"""``mparticle-dsr``: run the demo, the sandbox, or one privacy request by hand against mParticle.

Exit codes (every command): 0 completed (or all checks passed), 1 usage or configuration error, 2 failed,
3 still pending (the state file holds what is needed to resume).

Secrets never come from command-line arguments (they show in ``ps``): the config file refers to them as
``${NAME}``, read from the environment or from ``--env-file``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml
from rich.console import Console
from rich.table import Table

from connector_mparticle.sandbox.cli import sandbox_command
from dsr_framework import DsrRequest, Result
from dsr_framework.host import ConnectorHandle, load_host
from dsr_framework.models import ConnectionResult, format_time
from dsr_framework.validation import SchemaViolation

__all__ = ["EXIT_COMPLETED", "EXIT_FAILED", "EXIT_PENDING", "EXIT_USAGE", "main"]

EXIT_COMPLETED, EXIT_USAGE, EXIT_FAILED, EXIT_PENDING = 0, 1, 2, 3
EXIT_FOR_STATUS = {"completed": EXIT_COMPLETED, "failed": EXIT_FAILED, "pending": EXIT_PENDING}
STATUS_STYLE = {"completed": "green", "failed": "red", "pending": "yellow"}


class UsageProblem(click.ClickException):
    exit_code = EXIT_USAGE


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, optional quotes): secrets kept out of the command line."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise UsageProblem(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def connect(config_path: Path, env_file: Path | None) -> ConnectorHandle:
    """Load the mParticle connector through the framework, exactly as a host does."""
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageProblem(f"cannot read the config file {config_path}: {type(exc).__name__}") from None
    if not isinstance(config, Mapping):
        raise UsageProblem(f"{config_path} must hold a mapping of connector settings")
    environ = dict(os.environ)
    if env_file is not None:
        environ.update(read_env_file(env_file))
    host = load_host({"connectors": {"mparticle": {"enabled": True, "config": dict(config)}}}, environ=environ)
    if host.problems:
        raise UsageProblem("\n".join(str(p) for p in host.problems))
    return host.connector("mparticle")


def checks_table(result: ConnectionResult) -> Table:
    table = Table(title="Connection checks", show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("latency", justify="right")
    table.add_column("details")
    for check in result.checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]failed[/]",
                      f"{check.latency_ms:.0f} ms" if check.latency_ms is not None else "", check.message)
    return table


def result_table(result: Result, verbose: bool = False) -> Table:
    table = Table(show_header=False, title=f"{result.request_type} {result.request_id}")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("status", f"[{STATUS_STYLE[result.status]}]{result.status}[/]")
    table.add_row("message", result.message)
    if result.error is not None:
        table.add_row("error class", result.error.error_class)
    if result.next_check_at is not None:
        table.add_row("next check", format_time(result.next_check_at))
    for file in result.files:
        table.add_row("file", f"{file.path} ({file.size_bytes} bytes, sha256 {file.sha256[:12]}…)")
    if verbose:
        for event in result.audit:
            table.add_row(format_time(event.at), f"{event.action}: {event.outcome}")
    return table


def _load_state(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageProblem(f"the state file {path} is unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict) or "request" not in data:
        raise UsageProblem(f"{path} is not a state file written by mparticle-dsr")
    return data


def _save_state(path: Path, request: DsrRequest, result: Result) -> None:
    """Write atomically, so a crash mid-write never leaves a torn state file."""
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(json.dumps({"connector": "mparticle", "request": request.to_dict(),
                                   "result": result.to_dict()}, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def run_request(kind: str, config: Path, env_file: Path | None, email: str | None, customer_id: str | None,
                request_id: str | None, regulation: str, state_file: Path | None, wait: bool, as_json: bool,
                out: Path | None, verbose: bool) -> NoReturn:
    console = Console(stderr=as_json)
    saved = _load_state(state_file) if state_file else None
    state: dict[str, Any] | None = None
    if saved is not None:
        request = DsrRequest.from_dict(saved["request"])
        if request_id and request_id != request.request_id:
            raise UsageProblem(f"{state_file} belongs to request {request.request_id}, not {request_id}")
        if request.type != kind:
            raise UsageProblem(f"{state_file} holds a {request.type} request, not {kind}")
        last = Result.from_dict(saved["result"])
        if last.final:
            console.print(f"request {request.request_id} is already {last.status}; delete {state_file} to run again")
            _finish(console, last, as_json, verbose)
        state = dict(last.state) if last.state else None
    else:
        identities = {k: v for k, v in (("email", email), ("customer_id", customer_id)) if v}
        if not identities:
            raise UsageProblem("give the subject's --email (and/or --customer-id)")
        try:
            request = DsrRequest(request_id or f"cli-{uuid.uuid4()}", kind,  # type: ignore[arg-type]
                                 regulation, identities, datetime.now(UTC),  # type: ignore[arg-type]
                                 str(out.resolve()) if out else None)
        except SchemaViolation as exc:
            raise UsageProblem(str(exc)) from None
    handle = connect(config, env_file)
    result = handle.handle(request, state)
    if state_file:
        _save_state(state_file, request, result)
    if wait and not result.final:
        result = _wait(console, handle, request, result, state_file)
    _finish(console, result, as_json, verbose)


def _wait(console: Console, handle: ConnectorHandle, request: DsrRequest, result: Result,
          state_file: Path | None) -> Result:
    interrupted = False

    def stop(*_: object) -> None:
        nonlocal interrupted
        interrupted = True

    previous = signal.signal(signal.SIGINT, stop)
    try:
        with console.status("") as status:
            while not result.final and not interrupted:
                assert result.next_check_at is not None
                while not interrupted and (left := (result.next_check_at - datetime.now(UTC)).total_seconds()) > 0:
                    mp = result.summary.get("mparticle_status") or "submitted"
                    status.update(f"{request.type} {request.request_id}: mParticle says [bold]{mp}[/] · next check "
                                  f"in {left:,.0f}s · Ctrl-C leaves a resumable state")
                    time.sleep(min(left, 0.25))
                if interrupted:
                    break
                result = handle.handle(request, result.state)
                if state_file:
                    _save_state(state_file, request, result)
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        where = f" from {state_file}" if state_file else " (no --state file was given, so start it again)"
        console.print(f"[yellow]stopped waiting; request {request.request_id} is still pending — resume{where}[/]")
    return result


def _finish(console: Console, result: Result, as_json: bool, verbose: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        console.print(result_table(result, verbose))
    sys.exit(EXIT_FOR_STATUS[result.status])


config_option = click.option("--config", "config", required=True, envvar="MPARTICLE_DSR_CONFIG",
                             type=click.Path(exists=True, dir_okay=False, path_type=Path),
                             help="Connector settings (YAML or JSON); secrets as ${NAME} references.")
env_option = click.option("--env-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                          help="KEY=VALUE file supplying ${NAME} references (instead of the environment).")


def request_command(kind: str, name: str, summary: str) -> click.Command:
    @click.command(name, help=summary)
    @config_option
    @env_option
    @click.option("--email", help="The subject's email address.")
    @click.option("--customer-id", help="The subject's customer id (sent when 'identities' includes it).")
    @click.option("--request-id", help="Your id for the request (default: a new one). Reusing one resumes it.")
    @click.option("--regulation", type=click.Choice(["gdpr", "ccpa"]), default="gdpr", show_default=True)
    @click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="Persist the request and its state here, and resume from it.")
    @click.option("--wait", is_flag=True, help="Keep checking (with a progress line) until the result is final.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @click.option("--verbose", "-v", is_flag=True, help="Show the audit trail.")
    def command(config: Path, env_file: Path | None, email: str | None, customer_id: str | None,
                request_id: str | None, regulation: str, state_file: Path | None, wait: bool, as_json: bool,
                verbose: bool, **extra: Any) -> None:
        run_request(kind, config, env_file, email, customer_id, request_id, regulation, state_file, wait, as_json,
                    extra.get("out"), verbose)

    if kind == "access":
        command = click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
                               show_default=True, help="Directory for the results zip and summary.")(command)
    return command


@click.command("check")
@config_option
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check_command(config: Path, env_file: Path | None, as_json: bool) -> None:
    """Test the DSR, Events and Identity credentials (one result per API)."""
    result = connect(config, env_file).test_connection()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        Console().print(checks_table(result))
    sys.exit(EXIT_COMPLETED if result.ok else EXIT_FAILED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="connector-mparticle")
def main() -> None:
    """Privacy requests (access, deletion, opt-out) in mParticle.

    Exit codes: 0 completed, 1 usage or configuration error, 2 failed, 3 still pending.
    """


def _demo() -> click.Command:
    from connector_mparticle.demo import demo_command

    return demo_command


main.add_command(_demo())
main.add_command(sandbox_command)
main.add_command(check_command)
main.add_command(request_command("access", "access", "Get a copy of the subject's data (OpenDSR access)."))
main.add_command(request_command("deletion", "delete", "Erase the subject (OpenDSR erasure), then verify it."))
main.add_command(request_command("opt_out", "opt-out", "Record the subject's opt-out as consent state."))
