"""The rules every result a hook returns obeys, whatever the check: no secret (in any form, or withheld by the
facade), a state that survives JSON, well-formed verification and action required, ``pending`` only from a
capability declared asynchronous and never sooner than the declared minimum, and files whose names and contents
carry no secret. :class:`~dsr_framework.conformance.runtime.Runtime` applies them to every call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from dsr_framework.conformance.exports import name_problems
from dsr_framework.conformance.files import listed_file_problems, unlisted_files_with_secrets
from dsr_framework.conformance.leaks import leaked
from dsr_framework.conformance.outcomes import CheckFailed
from dsr_framework.conformance.session import ConnectorUnderTest
from dsr_framework.conformance.verification import verification_problem
from dsr_framework.host import WITHHELD_MESSAGE
from dsr_framework.models import ConnectionResult, DsrRequest, Result

__all__ = ["carries_secret", "check_files", "judge"]

_CLOCK_SLACK = 0.002  #: next_check_at is written with millisecond precision


def carries_secret(cut: ConnectorUnderTest, result: Result | ConnectionResult) -> bool:
    """True when the facade withheld ``result`` for a secret, or a secret (in any form) is in it still."""
    return WITHHELD_MESSAGE in result.message or leaked(json.dumps(result.to_dict()), cut.redactor)


def check_files(cut: ConnectorUnderTest, hook: str, request: DsrRequest, final: Result, written: Sequence[str]) -> None:
    """The files a request left: names that carry no secret, none unlisted holding one, and (once completed) the
    listed ones there as listed."""
    problems = name_problems([*(f.path for f in final.files), *written], cut.redactor)
    if request.output_dir is not None:
        problems += unlisted_files_with_secrets(request.output_dir, final.files, cut.redactor)
        if final.status == "completed":
            problems = listed_file_problems(final.files, request.output_dir, cut.redactor) + problems
    if problems:
        raise CheckFailed(f"{hook} " + "; ".join(dict.fromkeys(problems)))


def judge(cut: ConnectorUnderTest, hook: str, result: Result, started: datetime | None) -> None:
    """The rules every result obeys, whatever the check: no secret, plain-JSON state, a sane next check,
    a well-formed verification and action required (:mod:`.verification`), and ``pending`` only from a
    capability the manifest declares asynchronous."""
    named = name_problems([f.path for f in result.files], cut.redactor)
    if named:
        raise CheckFailed(f"{hook} {named[0]}")
    if carries_secret(cut, result):
        raise CheckFailed(f"a {hook} result carries a configured secret (or 8 or more characters of one, or an "
                          "encoded form) in its message, summary, state or audit trail")
    if result.state is not None:
        try:
            plain = json.loads(json.dumps(result.state)) == dict(result.state)
        except (TypeError, ValueError):
            plain = False
        if not plain:
            raise CheckFailed(f"{hook} returned a state that does not survive a JSON round trip; a host stores "
                              "state as JSON")
    if (problem := verification_problem(hook, result, cut.manifest.capability(hook))) is not None:
        raise CheckFailed(problem)
    if result.status == "pending":
        _judge_pending(cut, hook, result, started)


def _judge_pending(cut: ConnectorUnderTest, hook: str, result: Result, started: datetime | None) -> None:
    capability = cut.manifest.capability(hook)
    if capability is not None and not capability.asynchronous:
        raise CheckFailed(f"{hook} returned pending, but the manifest declares it synchronous (capabilities[].mode:"
                          " final in one call): declare it asynchronous, or finish the work in one call")
    if result.next_check_at is not None and started is not None:
        gap = (result.next_check_at - started).total_seconds()
        minimum, source = cut.min_interval()
        if gap < minimum - _CLOCK_SLACK:
            raise CheckFailed(f"{hook} returned pending with next_check_at {gap:.3f}s after the call began, sooner "
                              f"than the declared minimum of {minimum:g}s ({source}): a host honouring it would "
                              "poll in a busy loop")
