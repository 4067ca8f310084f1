from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib leaves sys.path alone: the helpers here, and the servers' ones
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
