"""Shared fixtures: no test may reach beyond loopback; helpers to build example connectors."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.connectors import ConnectorFactory

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_LOCAL_NAMES = {"localhost", "localhost.localdomain", ""}


class NetworkBlocked(RuntimeError):
    """A test tried to reach a host other than loopback."""


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard(address: Any) -> None:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return
    if isinstance(address, tuple) and _is_loopback(address[0]):
        return
    raise NetworkBlocked(f"tests may only connect to loopback, not {address!r}")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any connection (or DNS lookup) beyond loopback fail loudly in every test."""

    def connect(self: socket.socket, address: Any) -> None:
        _guard(address)
        return _real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _guard(address)
        return _real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            raise NetworkBlocked(f"tests may not resolve {host!r}")
        return _real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def connectors(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectorFactory]:
    """Writes example connector packages (optionally with a fake entry point) onto ``sys.path``."""
    root = tmp_path_factory.mktemp("connectors")
    monkeypatch.syspath_prepend(str(root))
    factory = ConnectorFactory(root)
    yield factory
    factory.cleanup()


@pytest.fixture
def sandbox(mparticle_sandbox: Any) -> Any:
    """The packaged ``mparticle_sandbox`` fixture: a fresh sandbox with sub-second request durations."""
    return mparticle_sandbox
