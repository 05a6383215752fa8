"""Make the shared builders of these tests (``_book_cases``) importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
