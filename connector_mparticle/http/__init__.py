"""The one way the connector talks HTTP: every call to mParticle, a token endpoint or a certificate host.

* :mod:`~connector_mparticle.http.urls`: the URL policy (which origins, judged by the parser that connects);
* :mod:`~connector_mparticle.http.session`: the hardened session (no redirects, no environment, TLS always);
* :mod:`~connector_mparticle.http.auth`: credentials bound to one origin (Basic, OAuth bearer tokens);
* :mod:`~connector_mparticle.http.deadline`: the wall-clock budget of one hook call;
* :mod:`~connector_mparticle.http.throttle`, :mod:`~connector_mparticle.http.retry`: pacing and retries;
* :mod:`~connector_mparticle.http.transport`: the client each API module uses, which puts them together.
"""
