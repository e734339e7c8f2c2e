"""``battlesnake-rl sagemaker launch|local``: submit a SageMaker job, or run the same job on this machine."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "launch": ("sagemaker_rl.launch:main", "submit a training job (single, homogeneous or heterogeneous) to SageMaker"),
    "local": ("sagemaker_rl.local:main", "run the same job on this machine, one process tree per simulated host"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        width = max(map(len, SUBCOMMANDS))
        print("usage: battlesnake-rl sagemaker {launch,local} [ARGS...]\n")
        print("\n".join(f"  {name.ljust(width)}  {text}" for name, (_, text) in SUBCOMMANDS.items()))
        return 0
    if argv[0] not in SUBCOMMANDS:
        print(f"battlesnake-rl sagemaker: unknown subcommand {argv[0]!r}; known: {', '.join(SUBCOMMANDS)}",
              file=sys.stderr)
        return 2
    module_name, _, function = SUBCOMMANDS[argv[0]][0].partition(":")
    return int(getattr(importlib.import_module(module_name), function)(argv[1:]) or 0)
