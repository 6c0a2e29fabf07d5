"""Chroma (dense, source of truth) plus a derived lexical index, kept in step."""
