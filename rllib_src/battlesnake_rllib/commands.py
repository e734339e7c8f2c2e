"""``battlesnake-rl train``: the training layer's command (``evaluate`` lives with the arena, in
``battlesnake_server.evaluate``: it needs only the exported model)."""

from __future__ import annotations

import runpy
import sys
import time
from collections.abc import Sequence
from pathlib import Path

TRAIN_SCRIPT = Path(__file__).resolve().parents[1] / "train-mabs.py"


def train(argv: Sequence[str] | None = None) -> int:
    """Local training with good defaults (standard 11x11, 4 snakes, PPO, 10 minutes) into runs/<name>/."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--name" in argv:
        i = argv.index("--name")
        if i + 1 >= len(argv):
            print("error: --name needs a value", file=sys.stderr)
            return 2
        name = argv[i + 1]
        del argv[i:i + 2]
    else:
        name = time.strftime("%Y%m%d-%H%M%S")
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv = ["--out", str(Path("runs") / name), *argv]
    module = runpy.run_path(str(TRAIN_SCRIPT), run_name="battlesnake_train")
    return int(module["main"](argv) or 0)
