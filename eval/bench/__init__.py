"""Benchmarks (``make bench``, ``python -m eval.bench [--only SECTION...]``): one module per section.

``ingestion`` (ingestion throughput, peak memory, lexical latency), ``ocr``, ``query`` (retrieval
and packing latency per stage), ``gateway`` (LLM gateway overhead) and ``server`` (the HTTP
service under load); ``corpus`` builds the synthetic-but-real corpora they share.
"""
