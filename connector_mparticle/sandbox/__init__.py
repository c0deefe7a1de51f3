"""A faithful local mParticle: OpenDSR v3, IDSync v1, Events v2, the Profile API and the OAuth token endpoint on
one origin, written from mParticle's documents and importing nothing from the connector it tests.

.. code-block:: python

    from connector_mparticle.sandbox import Sandbox

    with Sandbox() as sb:                       # a free port on 127.0.0.1
        sb.seed_profile({"email": "jane@example.com"}, attributes={"$firstname": "Jane"})
        config = sb.connector_config()          # connector settings pointing every API at sb.url

Run it on its own with ``python -m connector_mparticle.sandbox`` or ``mparticle-dsr sandbox``. The README's
"Sandbox" section documents every route, the admin API under ``/_sandbox/`` and every switch.
"""

from connector_mparticle.sandbox.admin_client import SandboxAdmin, SandboxAdminError
from connector_mparticle.sandbox.faults import Faults
from connector_mparticle.sandbox.instance_config import SandboxConfig, SandboxCredentials
from connector_mparticle.sandbox.limits import Limit
from connector_mparticle.sandbox.records import Durations
from connector_mparticle.sandbox.server import Sandbox
from connector_mparticle.sandbox.shapes import ShapeSettings
from connector_mparticle.sandbox.workspace import ForwardingPartner, IdentityStrategy

__all__ = ["Durations", "Faults", "ForwardingPartner", "IdentityStrategy", "Limit", "Sandbox", "SandboxAdmin",
           "SandboxAdminError", "SandboxConfig", "SandboxCredentials", "ShapeSettings"]
