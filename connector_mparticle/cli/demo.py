"""``mparticle-dsr demo``: every capability, end to end, against the embedded sandbox, as a host runs them.

Jane Doe asks for a copy of her data, opts out of the sale of her data, then asks to be forgotten. The demo
seeds a sandbox with her profile (and two others that must stay untouched), then drives the connector through
the framework's host facade, exactly as a DSR platform would, and shows what mParticle holds at each step.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from connector_mparticle.cli.exits import EXIT_COMPLETED, EXIT_FAILED, CliError
from connector_mparticle.cli.render import STATUS_STYLE, checks_table, human_duration, print_copyable, receipt_lines
from connector_mparticle.errors import MParticleError
from connector_mparticle.files import Folder, folder_path
from connector_mparticle.sandbox import Durations, Sandbox
from dsr_framework import DsrRequest, Result
from dsr_framework.drive import drive
from dsr_framework.host import ConnectorHandle, load_host
from dsr_framework.text import for_people, json_for_people

__all__ = ["demo_command", "run_demo"]

#: How the DSR platform knows Jane: her email, the app's customer id (mParticle's default login id) and her phone
#: number, which the connector sends to mParticle as ``mobile_number``.
JANE = {"email": "jane.doe@example.com", "customer_id": "CUST-1042", "phone": "+351 21 000 1042"}


def _event(kind: str, name: str, when: int, **data: Any) -> dict[str, Any]:
    payload = {"timestamp_unixtime_ms": when, **data}
    if kind == "custom_event":
        payload.update(event_name=name, custom_event_type=data.get("custom_event_type", "navigation"))
    elif kind == "screen_view":
        payload["screen_name"] = name
    return {"event_type": kind, "data": payload}


def seed(sandbox: Sandbox) -> dict[str, str]:
    """Three customers; returns their mpids by name."""
    day = 1_764_000_000_000
    jane = sandbox.seed_profile(
        {"email": JANE["email"], "customer_id": JANE["customer_id"], "mobile_number": JANE["phone"]},
        attributes={"$firstname": "Jane", "$lastname": "Doe", "$city": "Lisbon", "plan": "premium"},
        audiences=["Newsletter subscribers", "High lifetime value"],
        consent={"gdpr": {"marketing": {"consented": True, "document": "privacy_v2", "timestamp_unixtime_ms": day}},
                 "ccpa": {"data_sale_opt_out": {"consented": False, "timestamp_unixtime_ms": day}}},
        batches=[
            {"environment": "production", "events": [_event("session_start", "", day),
                                                     _event("screen_view", "Pricing", day + 5_000)]},
            {"environment": "production", "events": [_event("custom_event", "Added to cart", day + 60_000,
                                                            custom_attributes={"sku": "JD-77", "price": "49.00"},
                                                            custom_event_type="transaction")]},
            {"environment": "production", "events": [_event("custom_event", "Newsletter opened", day + 86_400_000,
                                                            custom_event_type="other")]},
        ],
    )
    omar = sandbox.seed_profile({"email": "omar.haddad@example.com"}, attributes={"$firstname": "Omar"},
                                batches=[{"environment": "production",
                                          "events": [_event("screen_view", "Home", day)]}])
    li = sandbox.seed_profile({"email": "li.wei@example.com"}, attributes={"$firstname": "Li"})
    return {"jane": str(jane["mpid"]), "omar": str(omar["mpid"]), "li": str(li["mpid"])}


def _drive(console: Console, handle: ConnectorHandle, request: DsrRequest) -> Result:
    """Call the hook until the result is final, showing a live status line while it is pending."""
    with console.status("") as status:
        def show(pending: Result, left: float) -> None:
            mp = pending.summary.get("mparticle_status") or "submitted"
            status.update(Text.assemble(f"  {request.type}: mParticle says ", (for_people(mp), "bold"),
                                        f"; next check in {human_duration(left)}"))

        return drive(lambda state: handle.handle(request, state), on_wait=show, tick=0.1).result


def _signed(result: Result) -> bool:
    """Every OpenDSR request of the result carries a verified receipt."""
    receipts = result.summary.get("receipts") or []
    return bool(receipts) and all(r.get("verified") for r in receipts)


def _receipts(console: Console, result: Result) -> None:
    for line in receipt_lines(result):
        console.print(Text(f"  mParticle's receipt: {line}"))


def _consent(sandbox: Sandbox, mpid: str) -> dict[str, Any]:
    profile = sandbox.profile(mpid)
    return profile["consent_state"] if profile else {}


def _consent_table(before: dict[str, Any], after: dict[str, Any]) -> Table:
    table = Table(title="Jane's consent state in mParticle")
    for column in ("purpose", "before", "after"):
        table.add_column(column)
    keys = sorted({(reg, p) for state in (before, after) for reg, purposes in state.items() for p in purposes})

    def show(state: dict[str, Any], regulation: str, purpose: str) -> str:
        entry = state.get(regulation, {}).get(purpose)
        return "—" if entry is None else for_people(f"consented={entry.get('consented')}")

    for regulation, purpose in keys:
        table.add_row(Text(for_people(f"{regulation}.{purpose}")), Text(show(before, regulation, purpose)),
                      Text(show(after, regulation, purpose)))
    return table


def run_demo(out: Path, console: Console) -> list[dict[str, Any]]:
    """Run every step; return one record per step (name, ok, seconds, result). :class:`CliError` if ``out``
    cannot hold the results (it must be the user's alone: :mod:`connector_mparticle.files`)."""
    fast = {"access": Durations(1.0, 2.0), "erasure": Durations(1.0, 2.0)}
    try:
        folder = Folder.open(out)
    except MParticleError as exc:
        raise CliError(f"cannot write the results to {out}: {exc.message}", kind="output_dir") from None
    # A workspace that includes the live profile in access results and defines the "marketing" GDPR purpose
    # (both off or empty in a new mParticle workspace, and so in the sandbox by default).
    with folder, Sandbox(durations=fast, include_live_profile=True, gdpr_purposes=("marketing",)) as sandbox:
        demo = _Demo(sandbox, folder, console)
        demo.connection()
        demo.access()
        demo.opt_out()
        demo.deletion()
        return demo.steps


class _Demo:
    """The four steps against one seeded sandbox, each printed as it runs and recorded."""

    def __init__(self, sandbox: Sandbox, folder: Folder, console: Console) -> None:
        self.sandbox, self.folder, self.console = sandbox, folder, console
        self.mpids = seed(sandbox)
        console.print(f"[bold]Embedded mParticle sandbox[/] at {sandbox.url}, seeded with 3 profiles "
                      "(Jane Doe, Omar Haddad, Li Wei).")
        config = sandbox.connector_config(
            regulation="from_request", polling={"min_interval_seconds": 0.25, "max_interval_seconds": 5},
            opt_out={"gdpr_purposes": ["marketing"], "document": "dsr_opt_out_v1"})
        self.handle = load_host({"connectors": {"mparticle": {"enabled": True, "config": config}}}).connector(
            "mparticle")
        self.steps: list[dict[str, Any]] = []

    def step(self, name: str, action: Callable[[], Any], ok: Callable[[Any], bool]) -> Any:
        self.console.rule(f"[bold]{name}")
        started = time.perf_counter()
        outcome = action()
        record = {"step": name, "ok": ok(outcome), "seconds": round(time.perf_counter() - started, 2),
                  "result": outcome.to_dict()}
        self.steps.append(record)
        if isinstance(outcome, Result):
            self.console.print(Text.assemble((outcome.status, STATUS_STYLE.get(outcome.status, "")),
                                             for_people(f": {outcome.message} ({record['seconds']:.1f}s)")))
        return outcome

    def request(self, kind: str, number: int) -> DsrRequest:
        return DsrRequest(f"demo-{number}-{kind}", kind, "ccpa", dict(JANE),  # type: ignore[arg-type]
                          datetime.now(UTC), str(self.folder.path))

    def connection(self) -> None:
        checks = self.step("1. Connection test", self.handle.test_connection, lambda r: bool(r.ok))
        self.console.print(checks_table(checks))
        self.console.print("Jane's requests name her by email, customer id and phone number "
                           "(mParticle's mobile_number).")

    def access(self) -> None:
        access = self.step("2. Access: Jane asks for her data",
                           lambda: _drive(self.console, self.handle, self.request("access", 1)),
                           lambda r: r.status == "completed" and r.summary.get("profiles_found") == 1 and _signed(r))
        _receipts(self.console, access)
        for file in access.files:
            print_copyable(self.console, f"  wrote ({file.size_bytes:,} bytes):", file.path)
        text = next((Path(f.path).name for f in access.files if f.path.endswith(".txt")), None)
        shown = self.folder.read(text, 1024 * 1024) if text is not None else None
        if shown is not None:  # the summary text is already safe to show; printed as text, not markup
            self.console.print(Text(shown.decode("utf-8", "replace").rstrip(), style="dim"))

    def opt_out(self) -> None:
        before = _consent(self.sandbox, self.mpids["jane"])
        self.step("3. Opt-out: Jane opts out of the sale of her data",
                  lambda: self.handle.handle(self.request("opt_out", 2)), lambda r: r.status == "completed")
        self.console.print(_consent_table(before, _consent(self.sandbox, self.mpids["jane"])))

    def deletion(self) -> None:
        jane = self.mpids["jane"]
        present = self.sandbox.profile(jane) is not None
        deletion = self.step("4. Deletion: Jane asks to be forgotten",
                             lambda: _drive(self.console, self.handle, self.request("deletion", 3)),
                             lambda r: r.status == "completed" and r.summary.get("verified") is True and _signed(r))
        _receipts(self.console, deletion)
        gone = self.sandbox.profile(jane) is None
        others = all(self.sandbox.profile(self.mpids[name]) is not None for name in ("omar", "li"))
        self.console.print(f"  Jane's profile before: {'present' if present else 'missing'}; after: "
                           f"{'erased' if gone else 'STILL PRESENT'}; "
                           f"other customers untouched: {'yes' if others else 'NO'}")
        self.steps[-1]["ok"] = self.steps[-1]["ok"] and gone and others and present


def summary_table(steps: list[dict[str, Any]]) -> Table:
    table = Table(title="Demo summary")
    for column in ("step", "outcome", "time", "details"):
        table.add_column(column)
    for record in steps:
        result = record["result"]
        detail = result.get("message", "")
        table.add_row(record["step"], Text("succeeded", "green") if record["ok"] else Text("FAILED", "red"),
                      f"{record['seconds']:.1f}s", Text(for_people(detail)))
    return table


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("mparticle-dsr-demo"),
              show_default=True, help="Where the access results and summaries are written.")
@click.option("--json", "as_json", is_flag=True, help="Print the step results as JSON (progress goes to stderr).")
def demo_command(out: Path, as_json: bool) -> None:
    """Run every capability against the embedded mParticle sandbox (no credentials, no network)."""
    console = Console(stderr=as_json)
    started = time.perf_counter()
    steps = run_demo(out, console)
    console.rule()
    console.print(summary_table(steps))
    ok = all(record["ok"] for record in steps)
    console.print(f"[{'green' if ok else 'red'}]{'Every step succeeded' if ok else 'Some steps failed'}[/] "
                  f"in {time.perf_counter() - started:.1f}s.")
    print_copyable(console, "Results are in:", str(folder_path(out)))
    if as_json:
        click.echo(json_for_people({"ok": ok, "steps": steps}))
    sys.exit(EXIT_COMPLETED if ok else EXIT_FAILED)
