"""`python -m extract.providers.testserver`: serve until SIGTERM or SIGINT (see `run.py`)."""

from __future__ import annotations

import sys

from extract.providers.testserver.run import main

if __name__ == "__main__":
    sys.exit(main())
