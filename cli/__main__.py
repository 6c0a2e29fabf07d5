"""``python -m cli``: the same as the ``rag`` command."""

import sys

from cli.main import main

sys.exit(main())
