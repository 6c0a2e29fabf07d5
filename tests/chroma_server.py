"""A real ``chroma run`` server on 127.0.0.1, for the Chroma-server side of the index tests."""

from deploy.engines import ChromaServer

__all__ = ["ChromaServer"]
