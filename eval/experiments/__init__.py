"""The README's retrieval and abstention figures: ``python -m eval.experiments retrieval|floor``.

``retrieval`` (``eval.experiments.retrieval``): SQuAD 2.0 dev (every paragraph of the shared copy
ingested as a document), the gold paragraph's hit@5 and MRR@10 for dense only, BM25 only and the
fusions, from one retrieval per question (the systems see the same two ranked lists).

``floor`` (``eval.experiments.floor``): which signal tells an answerable question from an
unanswerable one (SQuAD 2.0 and ClapNQ dev), each threshold chosen on one half of the questions
and scored on the other.

Both retrieve through the service's own retrieval stage (``rag.retrieval.Retriever``) and write
JSON to ``bench-results/``.
"""
