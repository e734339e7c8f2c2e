"""Per-game random streams (splitmix64) that compiled stages draw from.

Every game owns a 64-bit state in ``GameState.rng``, so a game's randomness never depends on which other games share
its batch: a batch of N games steps exactly like N games stepped alone. States are seeded from a
``numpy.random.Generator`` or from explicit seeds at the Python boundary; nothing here touches a global RNG.
"""

from __future__ import annotations

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def next_u64(rng, b):
    """Advance game ``b``'s stream and return 64 random bits."""
    rng[b] += GOLDEN
    return mix64(rng[b])


@njit(cache=True, inline="always")
def unit_from_bits(bits):
    return (bits >> _S11) * _TO_UNIT


@njit(cache=True, inline="always")
def rand_below(rng, b, n):
    """A uniform integer in ``[0, n)`` from game ``b``'s stream (``n`` >= 1)."""
    return np.int64(unit_from_bits(next_u64(rng, b)) * n)


def seeds_from(generator: np.random.Generator, count: int) -> np.ndarray:
    """``count`` game seeds drawn from a numpy Generator."""
    return generator.integers(0, 2**63 - 1, size=count, dtype=np.int64).astype(np.uint64)
