"""`python -m extract.testserver`: serve until SIGTERM or SIGINT (see `extract.testserver.run`)."""

from __future__ import annotations

import sys

from extract.testserver.run import main

if __name__ == "__main__":
    sys.exit(main())
