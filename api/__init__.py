"""The faces of the service: the HTTP API and the ``rag`` command."""
