"""Make the risk book's shared test builders (``tests/book/_book_cases``) importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "book"))
