"""The service layer, above ``ingest`` and ``rag`` and below the front ends (``api``, ``cli``,
``eval``): the composition root (``runtime``), the running service without its HTTP
(``backend``) and the sample documents of a first start (``samples``)."""
