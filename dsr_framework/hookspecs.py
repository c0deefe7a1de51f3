"""The hooks a DSR connector implements (pluggy project ``dsr``).

Connector authors import only :data:`dsr_framework.hookimpl` and implement some or all of these, with the
same argument names (a subset is allowed). The four of :data:`REQUEST_HOOKS` carry requests out; the hooks of
:data:`OPTIONAL_HOOKS` act on a request one of them started (``handle_cancel``): a connector offers them only
where its remote system can, declares them in its manifest like any other hook (with a capability entry), and a
host asks the manifest (:meth:`dsr_framework.host.ConnectorHandle.implements`) before offering them to people.
Every hook is called with keyword arguments only, through the
host facade (:class:`dsr_framework.host.ConnectorHandle`), which calls exactly one connector at a time.

Rules for every hook:

* **Never raise** for a remote, network or configuration condition (bad credentials, HTTP errors, timeouts,
  throttling, invalid settings). Return a ``failed`` result with an error class instead. An exception that
  escapes a hook is a connector defect; the host turns it into a ``failed`` result of class ``internal``.
* **Never block for long.** Each call does a bounded amount of work (seconds, not days) and returns. Work
  that takes longer returns ``pending`` with ``state`` and ``next_check_at``; the host stores the state and
  calls the same hook again with it, at or after that time.
* **Never return or log a secret.** Results, messages, audit entries and log lines must not contain any
  value the credentials schema flags as secret. Mask personal data (emails) in logs.
* **Be idempotent per request id.** Calling again with the same ``request.request_id`` (after a crash, a
  timeout or a lost response, with or without ``state``) must never create a second remote request.
* Return JSON-serialisable data: a model from :mod:`dsr_framework.models` or its ``to_dict()`` form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy

from dsr_framework.models import ConnectionResult, DsrRequest, Result

PROJECT = "dsr"
hookspec = pluggy.HookspecMarker(PROJECT)

#: The hooks that test a connection or carry a request out, in the order a host usually exercises them.
REQUEST_HOOKS = ("test_connection", "handle_access", "handle_deletion", "handle_opt_out")
#: Hooks that act on a request a request hook started; no host may assume a connector has them.
OPTIONAL_HOOKS = ("handle_cancel",)
#: Every hook a connector may implement.
HOOK_NAMES = (*REQUEST_HOOKS, *OPTIONAL_HOOKS)


@hookspec(firstresult=True)
def test_connection(config: Mapping[str, Any]) -> ConnectionResult | Mapping[str, Any] | None:
    """Check that the connector can reach and authenticate with its remote system.

    Arguments:
        config: the connector's configuration, already validated against its credentials schema.

    Returns:
        a :class:`ConnectionResult` with one :class:`CheckOutcome` per check (name, ok, a friendly message,
        latency) and an overall verdict that is true only when every check passed.

    When called: when an operator enables or edits the connector, and by the conformance harness.

    Must never: raise for bad credentials or an unreachable host (that is a failed check, with a message
    such as "the API rejected the key"); echo a secret; change remote data.
    """


@hookspec(firstresult=True)
def handle_access(
    config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None
) -> Result | Mapping[str, Any] | None:
    """Carry out (or continue) an access request: collect the subject's data.

    Arguments:
        config: the validated connector configuration.
        request: the privacy request; ``request.output_dir``, when set, is where result files may be written.
        state: ``None`` on the first call; afterwards the ``state`` of the previous ``pending`` result.

    Returns:
        a :class:`Result`: ``completed`` with ``files`` (each with size and sha256) and a readable ``summary``;
        ``pending`` with ``state`` and ``next_check_at``; or ``failed`` with a classified error.

    When called: once when the host receives the request, then again with the returned state at or after
    each ``next_check_at`` until the result is final.

    Must never: raise for a remote condition; block for longer than a bounded time; write outside
    ``request.output_dir``; return a secret; submit a second remote request for the same request id.
    """


@hookspec(firstresult=True)
def handle_deletion(
    config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None
) -> Result | Mapping[str, Any] | None:
    """Carry out (or continue) a deletion request, and verify the deletion where the remote allows it.

    Arguments and return value as for :func:`handle_access`. A subject that does not exist remotely is a
    ``completed`` deletion, not a failure. A deletion the connector could not verify is ``failed`` with
    error class ``verification``.

    When called: as for :func:`handle_access`; deletions can stay pending for weeks.

    Must never: raise for a remote condition; block; return a secret; submit the deletion twice.
    """


@hookspec(firstresult=True)
def handle_opt_out(
    config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None
) -> Result | Mapping[str, Any] | None:
    """Record the subject's opt-out (of sale, sharing or processing) in the remote system.

    Arguments and return value as for :func:`handle_access`. A subject unknown to the remote system is a
    ``completed`` opt-out with nothing to change. The ``summary`` says what consent was recorded.

    When called: once per opt-out request (and again with state if it returned ``pending``).

    Must never: raise for a remote condition; return a secret; record the same opt-out twice.
    """


@hookspec(firstresult=True)
def handle_cancel(
    config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None
) -> Result | Mapping[str, Any] | None:
    """Withdraw a request a request hook started and has not finished (optional: see :data:`OPTIONAL_HOOKS`).

    Arguments:
        config: the validated connector configuration.
        request: the request to withdraw, exactly as it was handed to its hook (same id, type and identities).
        state: the ``state`` of that request's latest ``pending`` result (``None`` if the host has none: the
            connector then finds the remote request again by the request id).

    Returns:
        a :class:`Result` for ``request`` (same id and type). ``completed`` means the request is withdrawn: the
        remote system shows it cancelled and will not carry it out; the host records the request as cancelled,
        never as carried out, and calls no hook for it again. ``failed`` with class ``rejected`` means it can no
        longer be withdrawn (say why, and what already happened, such as partners that received an erasure);
        the request goes on, so the host keeps its earlier state and keeps calling the request's hook. Other
        failure classes mean as for the request hooks; nothing was withdrawn.

    When called: when a person withdraws a request (the subject, or an operator correcting a mistake), before
    the request's result is final.

    Must never: raise for a remote condition; return ``pending`` (a cancel is one bounded call); claim a
    cancellation the remote system does not show; return a secret.
    """
