"""The pytest plugin behind ``pytest --dsr-conformance=NAME[,NAME...]``.

Registered through the ``pytest11`` entry point, it only adds the option and a few ``dsr_*`` fixtures until
the option is given; then it runs the conformance checks (:mod:`dsr_framework.conformance.checks`) instead
of the project's own tests (unless paths are passed explicitly).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from dsr_framework.conformance import ConformanceTarget, load_target
from dsr_framework.host import ENTRY_POINT_GROUP, ConnectorHandle, load_host


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dsr-conformance", "DSR connector conformance")
    group.addoption("--dsr-conformance", action="store", default=None, metavar="NAMES",
                    help="run the DSR connector conformance checks on these connectors (comma-separated)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dsr_conformance: a DSR connector conformance check")
    if config.getoption("dsr_conformance") and config.args_source != pytest.Config.ArgsSource.ARGS:
        from dsr_framework.conformance import checks

        config.args[:] = [str(Path(checks.__file__))]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dsr_connector_name" in metafunc.fixturenames:
        names = [n.strip() for n in (metafunc.config.getoption("dsr_conformance") or "").split(",") if n.strip()]
        metafunc.parametrize("dsr_connector_name", names, scope="session")


@pytest.fixture(scope="session")
def dsr_target(dsr_connector_name: str) -> Iterator[ConformanceTarget | None]:
    """The connector's conformance target, started for the whole session (None if it registers none)."""
    try:
        factory = load_target(dsr_connector_name)
    except LookupError:
        yield None
        return
    with factory() as target:
        yield target


@pytest.fixture(scope="session")
def dsr_plugin(dsr_connector_name: str, dsr_target: ConformanceTarget | None) -> object:
    """The connector object: from its target, or imported from the ``dsr.connectors`` entry point."""
    if dsr_target is not None and dsr_target.plugin is not None:
        return dsr_target.plugin
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == dsr_connector_name:
            try:
                return ep.load()
            except Exception as exc:  # noqa: BLE001 - report any import failure as a check failure
                pytest.fail(f"connector {dsr_connector_name!r} failed to import: {type(exc).__name__}: {exc}")
    pytest.fail(f"no connector {dsr_connector_name!r} in the {ENTRY_POINT_GROUP!r} entry-point group")


def handle_for(name: str, plugin: object, config: Any) -> ConnectorHandle:
    """Load ``plugin`` through the framework exactly as a host does, with ``config``."""
    host = load_host({"connectors": {name: {"enabled": True, "config": dict(config)}}}, plugins={name: plugin},
                     use_entry_points=False)
    if host.problems:
        pytest.fail("the host refused to load the connector:\n" + "\n".join(str(p) for p in host.problems))
    return host.connector(name)


@pytest.fixture
def dsr_target_required(dsr_target: ConformanceTarget | None, dsr_connector_name: str) -> ConformanceTarget:
    if dsr_target is None:
        pytest.skip(f"connector {dsr_connector_name!r} registers no conformance target (entry-point group "
                    "'dsr.conformance'), so its hooks cannot be exercised")
    return dsr_target


@pytest.fixture
def dsr_handle(dsr_connector_name: str, dsr_plugin: object, dsr_target_required: ConformanceTarget) -> ConnectorHandle:
    """The connector loaded with the target's good configuration."""
    if dsr_target_required.prepare is not None:
        dsr_target_required.prepare()
    return handle_for(dsr_connector_name, dsr_plugin, dsr_target_required.good_config)
