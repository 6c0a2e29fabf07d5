"""The index: contracts (``base``), the document store that keeps its sides in step (``store``),
Chroma as the vector store (``chroma_store``) and BM25 segments as the lexical index (``lexical``)."""
