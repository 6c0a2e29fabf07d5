"""The ``rag`` command: one module per group of sub-commands, registered explicitly by ``cli.main``."""
