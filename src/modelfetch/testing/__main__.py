"""`python -m modelfetch.testing serve`: a FakeHub as its own process (see `_serve`)."""

from __future__ import annotations

import sys

from ._serve import main

if __name__ == "__main__":
    sys.exit(main())
