"""Core of the RAG service: types, settings, errors, index, retrieval and answering."""
