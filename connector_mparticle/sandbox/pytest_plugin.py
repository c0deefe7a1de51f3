"""A pytest fixture for the sandbox, and the session's shape variation (registered through the ``pytest11`` entry
point; inert unless used).

.. code-block:: python

    def test_something(mparticle_sandbox):
        mparticle_sandbox.seed_profile({"email": "jane@example.com"})
        config = mparticle_sandbox.connector_config()

Shape variation (:mod:`~connector_mparticle.sandbox.shapes`) makes every sandbox of the session answer in the
varied shapes mParticle's documents show. Turn it on for a project with the ini option
``mparticle_sandbox_shapes = vary`` (this repository does, in ``pyproject.toml``), or for one run with
``--sandbox-shapes=vary``; ``--sandbox-shape-seed=N`` picks the seed (the header of the run prints the one in
use, and a failing test's report names its own, so a failure reproduces with the same seed). The choice reaches
every ``Sandbox()`` the session starts, in this process and in its children, through the environment variables
``MPARTICLE_SANDBOX_SHAPES`` and ``MPARTICLE_SANDBOX_SHAPE_SEED`` (already set ones win over the ini option).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Generator, Iterator

import pytest

from connector_mparticle.sandbox.records import Durations
from connector_mparticle.sandbox.server import Sandbox
from connector_mparticle.sandbox.shapes import ENV_SEED, ENV_SHAPES, ShapeSettings, default_settings

_INI = "mparticle_sandbox_shapes"
_PROPERTY = "mparticle sandbox shapes"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(_INI, "mParticle sandbox answers: 'tidy' (one shape) or 'vary' (every documented shape)",
                  default="tidy")
    group = parser.getgroup("mparticle-sandbox")
    group.addoption("--sandbox-shapes", choices=("tidy", "vary"), default=None,
                    help="mParticle sandbox answers: one tidy shape, or every documented shape (overrides the ini)")
    group.addoption("--sandbox-shape-seed", type=int, default=None, help="seed for the sandbox's shape variation")


def pytest_configure(config: pytest.Config) -> None:
    """Put the session's shape settings where every sandbox reads its defaults."""
    mode = config.getoption("--sandbox-shapes") or os.environ.get(ENV_SHAPES) or str(config.getini(_INI))
    os.environ[ENV_SHAPES] = mode
    seed = config.getoption("--sandbox-shape-seed")
    if seed is not None:
        os.environ[ENV_SEED] = str(seed)
    default_settings()  # a bad value fails the session here, not in the first test


def pytest_report_header(config: pytest.Config) -> str:
    settings = default_settings()
    if not settings.variation:
        return "mparticle sandbox: tidy shapes"
    return f"mparticle sandbox: shape variation on, seed {settings.seed} (--sandbox-shape-seed to change)"


def shapes_for(nodeid: str, base: ShapeSettings) -> ShapeSettings:
    """The shape settings of the fixture for one test: the session's, with a seed of its own derived from the
    session's seed and the test's id (each test sees other shapes; a rerun sees the same)."""
    return ShapeSettings(base.variation, base.seed ^ zlib.crc32(nodeid.encode()))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test that used the fixture says which shapes it saw, so the failure can be reproduced."""
    report: pytest.TestReport = yield
    if report.failed:
        report.sections += [(_PROPERTY, str(value)) for name, value in item.user_properties if name == _PROPERTY]
    return report


@pytest.fixture
def mparticle_sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A fresh sandbox on a free loopback port, with requests that complete in under a second, in the
    session's shape settings.

    Fresh, not shared and reset: starting and stopping one takes about 10 ms (its server stops at once, see
    :class:`~connector_mparticle.sandbox.server.Serving`), and a new port per test keeps apart what a client
    keeps per URL (the plugin caches a connector per configuration, with its OAuth tokens and slowdown), which
    no reset of the sandbox can undo. Tests that want one sandbox per module share it themselves and call
    ``reset()`` between tests (it brings back a freshly started sandbox)."""
    fast = {"access": Durations(0.2, 0.3), "erasure": Durations(0.2, 0.3)}
    base = default_settings()
    shapes = shapes_for(request.node.nodeid, base)
    request.node.user_properties.append((_PROPERTY, f"{'vary' if shapes.variation else 'tidy'}, seed {shapes.seed} "
                                                    f"(session seed {base.seed})"))
    with Sandbox(durations=fast, shapes=shapes) as sandbox:
        yield sandbox
