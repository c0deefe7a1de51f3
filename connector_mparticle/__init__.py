"""The mParticle connector for DSR platforms.

Loaded by a host through the ``dsr.connectors`` entry point ``mparticle`` (module
:mod:`connector_mparticle.plugin`). The local mParticle simulator is :mod:`connector_mparticle.sandbox`.
"""

__version__ = "0.1.0"
