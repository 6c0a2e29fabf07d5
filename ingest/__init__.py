"""From bytes on disk to chunks: type sniffing, loaders (with OCR), chunking, ingestion jobs."""
