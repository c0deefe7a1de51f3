"""A pytest fixture for the sandbox (registered through the ``pytest11`` entry point; inert unless used).

.. code-block:: python

    def test_something(mparticle_sandbox):
        mparticle_sandbox.seed_profile({"email": "jane@example.com"})
        config = mparticle_sandbox.connector_config()
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector_mparticle.sandbox.records import Durations
from connector_mparticle.sandbox.server import Sandbox


@pytest.fixture
def mparticle_sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox on a free loopback port, with requests that complete in under a second."""
    fast = {"access": Durations(0.2, 0.3), "erasure": Durations(0.2, 0.3)}
    with Sandbox(durations=fast) as sandbox:
        yield sandbox
