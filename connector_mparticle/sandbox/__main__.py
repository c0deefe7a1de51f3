"""``python -m connector_mparticle.sandbox``: the same as ``mparticle-dsr sandbox``."""

from connector_mparticle.sandbox.cli import sandbox_command

if __name__ == "__main__":
    sandbox_command(prog_name="python -m connector_mparticle.sandbox")
