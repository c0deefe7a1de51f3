"""The host process's global state, snapshotted around each hook call, compared, and put back.

A connector runs inside the host's process; what it changes there changes it for every other connector and for
the host itself. :func:`snapshot` records, cheaply (about a millisecond):

- TLS and network defaults: ``ssl._create_default_https_context``, ``socket.getdefaulttimeout()``,
  ``http.client.HTTPConnection.debuglevel`` (which prints headers, credentials included, to stdout);
- every function and class of the modules a connector's HTTP stack reaches (``ssl``, ``socket``,
  ``http.client``, ``urllib.request``, ``requests``, ``urllib3``, ``certifi``, ``logging``, ``os``, ``json``,
  ``builtins`` …, those already imported) and the methods of their main classes: a monkeypatch replaces one;
- the environment (proxies, CA bundles, ``PYTHONHTTPSVERIFY``, ``TZ`` …), the working directory, the umask;
- logging: ``logging.disable``, the root logger's level and handlers, and the level, ``disabled`` and
  ``propagate`` of every logger that already existed;
- ``sys``: the standard streams, ``excepthook``, ``sys.path``, the recursion limit, the switch interval;
  ``threading.excepthook``, trace and profile hooks for new threads; ``gc.isenabled()``; the signal handlers;
  the locale; a warning filter that ignores every warning (``warnings.simplefilter("ignore")``).

:meth:`Snapshot.changes` names what differs (never a value: an environment variable may hold a secret), and
:meth:`Snapshot.restore` puts back what it can, so one defective connector does not spoil the checks (or the
tests) that run after it in the same process.
"""

from __future__ import annotations

import contextlib
import gc
import locale
import logging
import os
import signal
import socket
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = ["Snapshot", "snapshot"]

#: Modules whose functions and classes a connector must not replace (only those already imported are read).
MODULES = ("ssl", "socket", "http.client", "urllib.request", "urllib.parse", "requests", "requests.api",
           "requests.sessions", "requests.adapters", "requests.utils", "urllib3", "urllib3.connection",
           "urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.ssl_", "urllib3.util.connection",
           "certifi", "certifi.core", "httpx", "logging", "os", "os.path", "json", "builtins", "tempfile",
           "subprocess", "shutil", "threading", "hashlib", "hmac", "secrets", "base64", "time", "datetime",
           "warnings", "locale")
#: Classes (module, name) whose methods a connector must not replace.
CLASSES = (("ssl", "SSLContext"), ("socket", "socket"), ("http.client", "HTTPConnection"),
           ("http.client", "HTTPSConnection"), ("requests.sessions", "Session"), ("requests.adapters", "HTTPAdapter"),
           ("urllib3.connectionpool", "HTTPConnectionPool"), ("urllib3.connectionpool", "HTTPSConnectionPool"),
           ("urllib3.connection", "HTTPSConnection"), ("urllib3.poolmanager", "PoolManager"),
           ("logging", "Logger"), ("logging", "Handler"), ("json", "JSONEncoder"), ("threading", "Thread"))
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGPIPE", "SIGCHLD", "SIGALRM",
                                                    "SIGUSR1", "SIGUSR2") if hasattr(signal, name))
#: Settings that are None until first used (a module imported, the temporary folder looked up): None before
#: and a value after is that first use, not a change.
_SET_LAZILY = frozenset({"http.client.HTTPConnection.debuglevel", "tempfile.tempdir"})
_Ref = tuple[str, str, str]  # (kind, owner, name): a module attribute or a class attribute


def _callables(namespace: dict[str, Any]) -> dict[str, Any]:
    """A module's functions and classes (its data changes as it is used: caches, lazy state)."""
    return {name: value for name, value in list(namespace.items())
            if callable(value) and not (name.startswith("__") and name.endswith("__"))}


def _members(cls: type) -> dict[str, Any]:
    """A class's methods and descriptors (properties, ``__init__`` and the like): what a monkeypatch replaces."""
    return {name: value for name, value in list(vars(cls).items())
            if callable(value) or hasattr(type(value), "__get__")}


def _patchable() -> dict[_Ref, Any]:
    """Every function and class of :data:`MODULES`, and every method of :data:`CLASSES`, by where it lives."""
    found: dict[_Ref, Any] = {}
    for name in MODULES:
        module = sys.modules.get(name)
        if isinstance(module, ModuleType):
            found.update({("module", name, attr): value for attr, value in _callables(vars(module)).items()})
            found[("modules", "sys.modules", name)] = module
    for module_name, class_name in CLASSES:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type):
            found.update({("class", f"{module_name}.{class_name}", attr): value
                          for attr, value in _members(cls).items()})
    ssl = sys.modules.get("ssl")
    if ssl is not None:  # private, so not among the callables above, and the switch that turns verification off
        found[("module", "ssl", "_create_default_https_context")] = getattr(ssl, "_create_default_https_context", None)
    return found


def _umask() -> int | None:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return None


def _loggers() -> dict[str, tuple[int, bool, bool]]:
    manager = logging.root.manager
    found = {"": (logging.root.level, logging.root.disabled, True)}
    for name, logger in list(manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            found[name] = (logger.level, logger.disabled, logger.propagate)
    return found


def _signals() -> dict[int, Any]:
    handlers: dict[int, Any] = {}
    for number in _SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            handlers[number] = signal.getsignal(number)
    return handlers


def _everything_ignored() -> int:
    """How many warning filters ignore every warning from everywhere (``warnings.simplefilter("ignore")``)."""
    return sum(1 for f in warnings.filters if f[0] == "ignore" and f[1] is None and f[2] is Warning and f[3] is None)


def _locale() -> str | None:
    with contextlib.suppress(locale.Error, ValueError):
        return locale.setlocale(locale.LC_ALL)
    return None


def _debuglevel() -> int | None:
    client = sys.modules.get("http.client")
    return getattr(getattr(client, "HTTPConnection", None), "debuglevel", None)


def _settings() -> dict[str, Any]:
    """The process-wide settings a connector must leave alone, by the name a message uses."""
    return {
        "socket.getdefaulttimeout()": socket.getdefaulttimeout(),
        "http.client.HTTPConnection.debuglevel": _debuglevel(),
        "the working directory (os.getcwd())": os.getcwd(),
        "the umask (os.umask)": _umask(),
        "logging.disable()": logging.root.manager.disable,
        "the root logger's handlers": tuple(logging.root.handlers),
        "sys.stdout / sys.stderr / sys.stdin": (sys.stdout, sys.stderr, sys.stdin),
        "tempfile.tempdir": sys.modules["tempfile"].tempdir if "tempfile" in sys.modules else None,
        "sys.excepthook": sys.excepthook, "threading.excepthook": threading.excepthook,
        "sys.path": tuple(sys.path), "sys.getrecursionlimit()": sys.getrecursionlimit(),
        "sys.getswitchinterval()": sys.getswitchinterval(), "gc.isenabled()": gc.isenabled(),
        "threading.settrace() / setprofile()": (threading.gettrace(), threading.getprofile()),
        "signal handlers": _signals(),
        "warnings.simplefilter (every warning ignored)": _everything_ignored(),
        "the locale (locale.setlocale)": _locale(),
    }


@dataclass
class Snapshot:
    """The host process's global state at one moment (see the module docstring for what is in it)."""

    settings: dict[str, Any]
    environ: dict[str, str]
    loggers: dict[str, tuple[int, bool, bool]]
    patchable: dict[_Ref, Any] = field(repr=False)

    def changes(self, now: Snapshot | None = None, own: str | None = None) -> list[str]:
        """What differs in ``now`` (default: the process as it is): names only, never values. The loggers of
        package ``own`` (the connector's) are its own to set."""
        now = now or snapshot()
        described = {"the environment ({})": self._environment(now),
                     "the level, disabled or propagate setting of logger(s) {}": self._loggers(now, own),
                     "replaced {}": self._replaced(now)}
        return self._settings(now) + [template.format(", ".join(names[:6]))
                                      for template, names in described.items() if names]

    def _settings(self, now: Snapshot) -> list[str]:
        return [name for name, value in self.settings.items()
                if now.settings.get(name) != value and not (value is None and name in _SET_LAZILY)]

    def _environment(self, now: Snapshot) -> list[str]:
        return sorted(k for k in self.environ.keys() | now.environ.keys() if self.environ.get(k) != now.environ.get(k))

    def _loggers(self, now: Snapshot, own: str | None) -> list[str]:
        def theirs(name: str) -> bool:
            return own is not None and (name == own or name.startswith(f"{own}."))

        return sorted(n or "root" for n, v in self.loggers.items()
                      if n in now.loggers and now.loggers[n] != v and not theirs(n))

    def _replaced(self, now: Snapshot) -> list[str]:
        """The functions and classes that ``now`` holds others in place of (where their module is still there)."""
        owners = {owner for _, owner, _ in now.patchable}
        return sorted(_shown(ref) for ref, value in self.patchable.items()
                      if (ref[0] == "modules" or ref[1] in owners) and now.patchable.get(ref, _GONE) is not value)

    def restore(self) -> None:
        """Put back what changed, as far as a snapshot can (the settings, environment, loggers and functions)."""
        _restore_settings(self.settings)
        _restore_environ(self.environ)
        now = _loggers()
        for name, (level, disabled, propagate) in self.loggers.items():
            if now.get(name, (level, disabled, propagate)) != (level, disabled, propagate):
                logger = logging.getLogger(name or None)
                logger.setLevel(level)
                logger.disabled, logger.propagate = disabled, propagate
        for (kind, owner, name), value in self.patchable.items():
            with contextlib.suppress(Exception):
                _put_back(kind, owner, name, value)


_GONE = object()


def _shown(ref: _Ref) -> str:
    kind, owner, name = ref
    return f"sys.modules[{name!r}]" if kind == "modules" else f"{owner}.{name}"


def _put_back(kind: str, owner: str, name: str, value: Any) -> None:
    if kind == "modules":
        sys.modules[name] = value
        return
    if kind == "module":
        setattr(sys.modules[owner], name, value)
        return
    module_name, _, class_name = owner.rpartition(".")
    cls = getattr(sys.modules[module_name], class_name)
    if vars(cls).get(name, _GONE) is not value:
        setattr(cls, name, value)


def _set_streams(streams: Any) -> None:
    sys.stdout, sys.stderr, sys.stdin = streams


def _set_root_handlers(handlers: Any) -> None:
    logging.root.handlers[:] = list(handlers)


def _set_debuglevel(level: Any) -> None:
    sys.modules["http.client"].HTTPConnection.debuglevel = level


def _set_umask(mask: Any) -> None:
    if mask is not None:
        os.umask(mask)


def _set_gc(enabled: Any) -> None:
    (gc.enable if enabled else gc.disable)()


def _set_locale(name: Any) -> None:
    if name is not None:
        locale.setlocale(locale.LC_ALL, name)


def _set_ignored(count: Any) -> None:
    """Drop the catch-all ``ignore`` filters added since (the newest first, as ``simplefilter`` inserts them)."""
    extra = _everything_ignored() - int(count)
    for entry in [f for f in warnings.filters if f[0] == "ignore" and f[1] is None and f[2] is Warning
                  and f[3] is None][:max(extra, 0)]:
        warnings.filters.remove(entry)  # type: ignore[attr-defined]  # a list, typed as a Sequence


#: How to put each of :func:`_settings` back (the signal handlers and trace hooks are only reported).
_RESTORE: dict[str, Callable[[Any], object]] = {
    "socket.getdefaulttimeout()": socket.setdefaulttimeout,
    "http.client.HTTPConnection.debuglevel": _set_debuglevel,
    "the working directory (os.getcwd())": os.chdir,
    "the umask (os.umask)": _set_umask,
    "logging.disable()": logging.disable,
    "the root logger's handlers": _set_root_handlers,
    "sys.stdout / sys.stderr / sys.stdin": _set_streams,
    "tempfile.tempdir": lambda value: setattr(sys.modules["tempfile"], "tempdir", value),
    "sys.excepthook": lambda hook: setattr(sys, "excepthook", hook),
    "threading.excepthook": lambda hook: setattr(threading, "excepthook", hook),
    "sys.path": lambda path: sys.path.__setitem__(slice(None), list(path)),
    "sys.getrecursionlimit()": sys.setrecursionlimit,
    "sys.getswitchinterval()": sys.setswitchinterval,
    "gc.isenabled()": _set_gc,
    "warnings.simplefilter (every warning ignored)": _set_ignored,
    "the locale (locale.setlocale)": _set_locale,
}


def _restore_settings(settings: dict[str, Any]) -> None:
    now = _settings()
    for name, step in _RESTORE.items():
        if now.get(name) != settings[name] and not (settings[name] is None and name in _SET_LAZILY):
            with contextlib.suppress(Exception):
                step(settings[name])


def _restore_environ(environ: dict[str, str]) -> None:
    for name in set(os.environ) - set(environ):
        del os.environ[name]
    for name, value in environ.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def snapshot() -> Snapshot:
    """The host process's global state now."""
    return Snapshot(_settings(), dict(os.environ), _loggers(), _patchable())
