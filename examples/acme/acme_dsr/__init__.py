"""An example DSR connector for the (fictional) Acme CRM: a complete, minimal, honest plugin of dsr_framework.

``plugin`` holds the hooks, ``client`` the one HTTP boundary, ``manifest.yaml`` and
``schemas/credentials.schema.json`` what the connector declares; ``conformance`` is its conformance target and
oracle, and ``simulator`` the local stand-in for Acme's API that the target starts. Every module uses
relative imports, so the package can be copied under another name (the harness's tests do that).
"""
