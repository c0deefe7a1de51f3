"""``python -m connector_mparticle.sandbox``: the same as ``mparticle-dsr sandbox``, without ``--write-config``
(which only the connector's command line offers: it writes connector configuration by the connector's file rules).
"""

from connector_mparticle.sandbox.command_line import sandbox_command

if __name__ == "__main__":
    sandbox_command(prog_name="python -m connector_mparticle.sandbox")
