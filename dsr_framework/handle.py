"""The typed facade a host calls one connector through (:class:`ConnectorHandle`), built by
:func:`dsr_framework.host.load_host`.

It calls one connector at a time, refuses a request the connector's manifest does not cover before calling it,
validates what comes back, withholds a result carrying a configured secret, and never lets an exception from a
connector reach the host: each of these becomes a ``failed`` result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from dsr_framework.manifest import Manifest
from dsr_framework.models import HOOK_FOR_TYPE, CheckOutcome, ConnectionResult, DsrRequest, Result
from dsr_framework.redact import Redactor
from dsr_framework.validation import SchemaViolation

__all__ = ["WITHHELD_MESSAGE", "ConnectorHandle"]

log = logging.getLogger("dsr_framework.host")  #: the host's log, where hosts have always found these records

#: The message of a result the facade withheld; tools (the conformance harness) look for it.
WITHHELD_MESSAGE = "the connector's result was withheld because it contained a configured secret"


class ConnectorHandle:
    """Typed access to one loaded connector's hooks.

    Every method returns a model; none raises because of what the connector did. An exception escaping
    the connector, a result that fails the result schema, or a result carrying a configured secret all
    become a ``failed`` result of class ``internal``.
    """

    def __init__(
        self, name: str, plugin: object, manifest: Manifest, config: Mapping[str, Any],
        redactor: Redactor, pm: pluggy.PluginManager,
    ) -> None:
        self.name = name
        self.plugin = plugin
        self.manifest = manifest
        self._config = config
        self._redactor = redactor
        self._pm = pm

    def __repr__(self) -> str:
        return f"ConnectorHandle({self.name!r}, version={self.manifest.version!r})"

    @property
    def config(self) -> Mapping[str, Any]:
        """The settings every hook of this connector receives (validated, ``${...}`` expanded)."""
        return self._config

    def observe_config(self, wrap: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> None:
        """Hand the hooks ``wrap(settings)`` from now on, instead of the settings themselves.

        For tools that watch what a connector does with its settings (the conformance harness records which
        keys it reads); ``wrap`` must return a mapping equal to the one it was given.
        """
        wrapped = wrap(self._config)
        if dict(wrapped) != dict(self._config):
            raise ValueError("observe_config: the wrapped settings differ from the settings")
        self._config = wrapped

    @property
    def config_id(self) -> str:
        """A short hash that tells this connector's configuration apart from any other (workers of one fleet
        compare it); it holds nothing that can be read back."""
        canonical = json.dumps(self._config, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def redactor(self) -> Redactor:
        """Hides this connector's configured secrets (and masks emails) in any text."""
        return self._redactor

    def implements(self, hook: str) -> bool:
        return hook in self.manifest.hooks

    def hookimpl(self, hook: str) -> pluggy.HookImpl:
        """This connector's implementation of ``hook`` (for tools such as the conformance harness)."""
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook)
        impls = [i for i in caller.get_hookimpls() if i.plugin is self.plugin]
        if not impls:
            raise LookupError(f"connector {self.name!r} does not implement {hook}")
        return impls[0]

    def _call(self, hook: str, **kwargs: Any) -> Any:
        others = [p for p in self._pm.get_plugins() if p is not self.plugin]
        caller = self._pm.subset_hook_caller(hook, remove_plugins=others)
        return caller(config=self._config, **kwargs)

    def _crash_message(self, hook: str, exc: BaseException) -> str:
        """The message of the failed result an exception escaping ``hook`` becomes (logged with its traceback)."""
        detail = self._redactor(f"{type(exc).__name__}: {exc}")
        log.error(
            "connector %r raised inside %s: %s\n%s", self.name, hook, detail,
            self._redactor("".join(traceback.format_exception(exc))),
        )
        return f"the connector failed unexpectedly in {hook} ({detail})"

    def _document(self, hook: str, model: type[Result | ConnectionResult], what: str,
                  **kwargs: Any) -> Mapping[str, Any] | str:
        """Call ``hook``: the JSON object it returned, or the message of the failure it becomes instead.

        An exception, something that is not a JSON object (nor a ``model``), or a result carrying a configured
        secret all become a message; the caller turns it into its own kind of failed result.
        """
        try:
            raw = self._call(hook, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the host must survive any connector defect
            return self._crash_message(hook, exc)
        document = raw.to_dict() if isinstance(raw, model) else raw
        if not isinstance(document, Mapping):
            return f"connector {self.name!r} returned no {what}"
        if self._redactor.leaks(json.dumps(document, default=str)):
            log.error("connector %r returned a configured secret from %s; result withheld", self.name, hook)
            return WITHHELD_MESSAGE
        return document

    def test_connection(self) -> ConnectionResult:
        """Run the connector's connection checks."""

        def failure(message: str) -> ConnectionResult:
            return ConnectionResult((CheckOutcome("connector", False, message, error_class="internal"),), message)

        if not self.implements("test_connection"):
            return failure(f"connector {self.name!r} does not implement test_connection")
        document = self._document("test_connection", ConnectionResult, "connection-test result")
        if isinstance(document, str):
            return failure(document)
        try:
            return ConnectionResult.from_dict(document)
        except (SchemaViolation, ValueError, KeyError) as exc:
            return failure(f"the connector returned an invalid result: {self._redactor(str(exc))}")

    def handle(self, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Result:
        """Dispatch ``request`` to the hook for its type."""
        return self._handle(HOOK_FOR_TYPE[request.type], request, state)

    def handle_access(self, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Result:
        return self._handle("handle_access", request, state)

    def handle_deletion(self, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Result:
        return self._handle("handle_deletion", request, state)

    def handle_opt_out(self, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Result:
        return self._handle("handle_opt_out", request, state)

    def _refusal(self, hook: str, request: DsrRequest) -> Result | None:
        """The failed result of a request that must not reach ``hook`` at all (None when it may)."""
        if HOOK_FOR_TYPE[request.type] != hook:
            return Result.failed(request, "configuration", f"a {request.type} request cannot go to {hook}")
        if not self.implements(hook):
            return Result.failed(
                request, "configuration", f"connector {self.name!r} does not support {request.type} requests"
            )
        if request.regulation not in self.manifest.regulations_for(hook):
            return Result.failed(request, "configuration", f"connector {self.name!r} does not carry out "
                                 f"{request.regulation} {request.type} requests (its manifest's regulations)")
        return None

    @staticmethod
    def _passable_state(hook: str, request: DsrRequest, state: Any) -> dict[str, Any] | None:
        if state is None or isinstance(state, Mapping):
            return dict(state) if state is not None else None
        # The contract says a JSON object; anything else cannot be what the connector returned. Passing
        # none lets the connector resume from its remote system's own record.
        log.warning("the host passed a %s as the state of request %r to %s; ignoring it",
                    type(state).__name__, request.request_id, hook)
        return None

    def cancel(self, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Result:
        """Withdraw ``request`` through ``handle_cancel`` (an optional hook: a connector whose manifest does not
        declare it gets a ``failed`` result of class ``configuration``, and nothing is called). ``state`` is the
        request's latest pending state. See :func:`dsr_framework.hookspecs.handle_cancel` for what comes back."""
        if not self.implements("handle_cancel"):
            return Result.failed(request, "configuration", f"connector {self.name!r} cannot cancel requests (its "
                                 "manifest does not declare handle_cancel)")
        result = self._checked("handle_cancel", request, state)
        if result.status == "pending":
            return Result.failed(request, "internal", "the connector returned pending from handle_cancel; a cancel "
                                 "is one call, final either way")
        return result

    def _handle(self, hook: str, request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
        refused = self._refusal(hook, request)
        if refused is not None:
            return refused
        return self._checked(hook, request, state)

    def _checked(self, hook: str, request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
        """Call ``hook`` for ``request``: its result once validated, or the failed result it becomes."""
        document = self._document(hook, Result, f"result from {hook}", request=request,
                                  state=self._passable_state(hook, request, state))
        if isinstance(document, str):
            return Result.failed(request, "internal", document)
        try:
            result = Result.from_dict(document)  # validates against the result schema
        except (SchemaViolation, ValueError, KeyError) as exc:
            return Result.failed(request, "internal", f"the connector returned an invalid result: {exc}")
        if result.request_id != request.request_id or result.request_type != request.type:
            return Result.failed(request, "internal", "the connector returned a result for a different request")
        return result
