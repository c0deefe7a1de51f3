"""Run the checks without pytest's command line: for authors' own test suites (and any other tool)."""

from __future__ import annotations

import traceback
from collections.abc import Iterable

from dsr_framework.conformance import egress, threads
from dsr_framework.conformance.checks import CHECKS, Check, run_check
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped, MissingPiece
from dsr_framework.conformance.session import ConnectorUnderTest
from dsr_framework.conformance.target import ConformanceTarget, TargetFactory
from dsr_framework.conformance.verdict import Row, Verdict

__all__ = ["check_row", "run_conformance"]


def check_row(cut: ConnectorUnderTest, selected: Check, name: str, param: str | None, allow_skips: bool) -> Row:
    """Run one check and describe its outcome as a verdict row (messages scrubbed)."""
    clean = cut.clean
    try:
        run_check(cut, selected, param)
    except CheckFailed as exc:
        return Row(cut.name, name, "fail", clean(str(exc)))
    except CheckSkipped as exc:
        return Row(cut.name, name, "skip", clean(str(exc)))
    except MissingPiece as exc:
        return Row(cut.name, name, "skip" if allow_skips else "missing", clean(str(exc)))
    except Exception as exc:  # noqa: BLE001 - the target's own code, or a harness bug: reported, never raised
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Row(cut.name, name, "error", clean(f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})"))
    return Row(cut.name, name, "pass")


def run_conformance(name: str, *, plugin: object | None = None,
                    target: TargetFactory | ConformanceTarget | None = None,
                    allow_skips: bool = False, checks: Iterable[str] | None = None) -> Verdict:
    """Run every conformance check on connector ``name`` and return the verdict.

    Arguments:
        name: the connector's name (its manifest id, and its entry-point name when installed).
        plugin: the connector object; default: imported from the ``dsr.connectors`` entry point.
        target: a :class:`ConformanceTarget` (or a factory returning a context manager yielding one); default:
            the one registered in the ``dsr.conformance`` entry-point group.
        allow_skips: accept checks that could not run for lack of a target or oracle.
        checks: run only the checks with these names (all of them by default), e.g. while developing.

    .. code-block:: python

        def test_my_connector_conforms():
            verdict = run_conformance("acme")
            assert verdict.ok, verdict.table()
    """
    egress.install()
    threads.install()
    cut = ConnectorUnderTest(name, plugin=plugin, target=target)
    verdict = Verdict(allow_skips=allow_skips)
    wanted = None if checks is None else set(checks)
    unknown = sorted((wanted or set()) - {c.name for c in CHECKS})
    if unknown:
        raise ValueError(f"no such conformance check: {', '.join(unknown)}")
    try:
        for selected in (c for c in CHECKS if wanted is None or c.name in wanted):
            for display, param in selected.ids():
                verdict.rows.append(check_row(cut, selected, display, param, allow_skips))
    finally:
        cut.close()
    return verdict
