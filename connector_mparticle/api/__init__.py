"""mParticle's APIs, one module each, over the HTTP layer (:mod:`connector_mparticle.http`).

* :mod:`~connector_mparticle.api.opendsr`: OpenDSR v3 (submit, status, results download);
* :mod:`~connector_mparticle.api.results`: the access results archive, read in mParticle's documented format;
* :mod:`~connector_mparticle.api.signatures`, :mod:`~connector_mparticle.api.receipts`: processor signatures
  on OpenDSR answers and callbacks, and the receipts kept from them;
* :mod:`~connector_mparticle.api.identity`: IDSync search;
* :mod:`~connector_mparticle.api.events`: the Events API (consent batches);
* :mod:`~connector_mparticle.api.profile`: the Profile API (reads by mpid).
"""
