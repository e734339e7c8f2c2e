"""The compiled kernels release the interpreter lock, so games answered on different server threads run in parallel.

Every ``@njit`` kernel of the engine, features, bots, observations, rewards, the safety layer and the network search
is compiled with ``nogil=True`` (the random-number helpers of ``engine.rng`` are inlined into them); the overlap test
checks the real call paths the server takes. It does not time anything: with the interpreter's forced switching
turned off, the main thread can only run while the worker thread is inside a kernel that let the lock go, so the
main thread either stops the worker early (the kernels release the lock) or gets to run only after the worker made
all its calls (they hold it).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

from battlesnake_gym import bots, features, rewards
from battlesnake_gym.engine import Games, GameSettings, map_stages, rule_stages, starts, turn
from battlesnake_gym.observations import egocentric, legacy, make_encoder, territory
from battlesnake_server import safety, search

KERNEL_MODULES = (rule_stages, map_stages, turn, starts, features, bots, egocentric, territory, legacy, rewards, safety,
                  search)


def test_every_compiled_kernel_releases_the_interpreter_lock() -> None:
    kernels = {f"{module.__name__}.{name}": kernel for module in KERNEL_MODULES
               for name, kernel in vars(module).items() if isinstance(kernel, CPUDispatcher)
               and kernel.py_func.__module__ == module.__name__}
    assert len(kernels) > 40
    holding = sorted(name for name, kernel in kernels.items() if not kernel.targetoptions.get("nogil"))
    assert not holding, f"compiled without nogil=True: {holding}"


def _big_games() -> Games:
    return Games(GameSettings(width=25, height=25), num_snakes=16, batch_size=64, seed=0)


def _assess(games: Games) -> None:
    rank, space = np.zeros(4, np.int64), np.zeros(4, np.int64)
    for b in range(games.batch_size):
        safety.assess_moves(games.state, games.params, False, b, 0, rank, space)


CALL_PATHS: dict[str, Callable[[Games], object]] = {
    "safety layer": _assess,
    "flood bot": bots.make_bot("flood", 0),
    "engine step": lambda games: games.copy().step(bots.make_bot("safe", 1)(games)),
    "egocentric encoder": make_encoder("egocentric").encode,
}


@pytest.mark.parametrize("path", list(CALL_PATHS))
def test_another_thread_runs_while_a_kernel_works(path: str) -> None:
    call, games = CALL_PATHS[path], _big_games()
    call(games)  # compiled (or loaded from numba's cache) before the lock is watched
    calls, stop, started = [0], threading.Event(), threading.Event()
    most = 200

    def worker() -> None:
        started.set()
        while calls[0] < most and not stop.is_set():
            call(games)
            calls[0] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)  # no forced switches: the lock changes hands only when its holder lets it go
    try:
        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        started.wait()  # from here on, this thread runs only when the worker lets the lock go
        stop.set()
        thread.join(timeout=300)
    finally:
        sys.setswitchinterval(interval)
    assert not thread.is_alive()
    assert calls[0] < most, f"the {path} held the interpreter lock through all {most} calls"
