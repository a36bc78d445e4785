"""The guide's code lives in the docs pages; tests/guide holds copies that pytest and mypy run.

A ```python block whose first line is `# tests/guide/NAME.py` is that file's code. The test
`test_the_guide_files_are_the_pages_code` fails when a copy differs from its page; after
editing a page, `python -m tests.examples.guide_pages` writes the copies again.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```python\n# (tests/guide/[\w./]+\.py)\n(.*?)^```", re.S | re.M)


def guide_blocks() -> dict[str, str]:
    """Each guide file named in a page, and the code the page gives it."""
    found: dict[str, str] = {}
    for page in PAGES:
        for match in FENCE.finditer(page.read_text(encoding="utf-8")):
            found[match.group(1)] = match.group(2)
    return found


def main() -> int:
    """Write tests/guide's copies from the pages."""
    for name, code in guide_blocks().items():
        (ROOT / name).write_text(code, encoding="utf-8")
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
