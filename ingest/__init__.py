"""From bytes on disk to chunks: intake (one way in), type sniffing, loaders (with OCR),
chunking, the ingestion pipeline and its durable job queue."""
