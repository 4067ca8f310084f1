"""--import-mode=importlib leaves sys.path alone; the shared helpers sit next to this file."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from monitoring_support import exposed  # noqa: F401  (the fixture, for every test here)
