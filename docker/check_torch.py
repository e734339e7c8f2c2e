"""Fail an image build whose torch is not the one it should have: the pinned version, CUDA or not by variant.

    python check_torch.py --variant cpu --version 2.13.0

A CPU image that got PyPI's CUDA torch (GBs) or a GPU image without CUDA builds fine and fails much later; pip
silently replacing a pinned torch is caught here too. Exits 1 naming what was found.
"""

from __future__ import annotations

import argparse
import sys


def problem(variant: str, version: str) -> str | None:
    import torch

    found, cuda = torch.__version__, torch.version.cuda
    if found.split("+")[0] != version:
        return f"torch {found} is installed, the pin is {version} (setup.py and the Dockerfile's TORCH_VERSION)"
    if variant == "cpu" and cuda is not None:
        return f"the CPU image got a CUDA build of torch ({found}, CUDA {cuda}): use the CPU index or a CPU wheel"
    if variant == "gpu" and cuda is None:
        return f"the GPU image got a CPU-only torch ({found})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=("cpu", "gpu"), required=True)
    parser.add_argument("--version", required=True, help="the pinned torch version, e.g. 2.13.0")
    args = parser.parse_args(argv)
    message = problem(args.variant, args.version)
    if message:
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
