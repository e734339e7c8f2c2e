"""The safety layer between a policy and the arena: never an avoidable immediate death, room to live, and an optional
shallow search with the engine.

A policy (a trained network or a bot) gives a preference for each move; ``SafetyLayer.choose`` turns it into the move
to play, for one snake of a batch-of-one ``Games``:

1. Each move is judged (``assess_moves``): SURE_DEATH (off the board, into a segment still there next turn, or health
   running out: starvation or hazard damage, unless the cell holds food), RISKY (a cell an equal-or-longer head can
   also reach, or the tail of a snake that may eat this turn and so keep its tail), or SAFE. Its reachable space is
   counted by a flood fill that knows when each body segment leaves its cell (a segment ``k`` turns from the tail is
   gone after ``k`` turns), capped at the board's cells.
2. Without search, the moves of the best tier are kept: not SURE_DEATH, then ``space >= length`` (roomy), then SAFE.
   With search (``search_ms > 0``), every move that is not SURE_DEATH is played out in Monte-Carlo rollouts on the
   engine within the time left (``rollout_values``); the moves whose survival is within ``search_tolerance`` of the
   best are kept, and the tier order above decides among them.
3. Among the kept moves the policy's favourite wins, unless another kept move is within ``near_tie`` of it in
   probability and has more reachable space (a near tie broken by space).

When every move is SURE_DEATH, the policy's favourite is played. Moves are 0 up, 1 down, 2 left, 3 right.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from battlesnake_gym.bots import make_bot
from battlesnake_gym.engine import Games, GameState
from battlesnake_gym.engine.state import ALIVE, NO_MOVE, P_HAZARD_DAMAGE, P_HEIGHT, P_WIDTH
from battlesnake_gym.features import (
    DX,
    DY,
    count_hazards,
    free_after,
    mark_obstacles,
    next_to_head,
    reachable,
    step_target,
)

SURE_DEATH, RISKY, SAFE = 0, 1, 2
RANK_NAMES = ("sure-death", "risky", "safe")
#: Rollout time per move the server uses unless told otherwise (see ``SafetyLayer.search_ms``).
DEFAULT_SEARCH_MS = 15.0
#: Most bytes one round of rollouts may copy the board into: rounds shrink on huge boards (128 x 128 with dozens of
#: snakes) and the search is skipped when even one copy per move would not fit.
MAX_ROLLOUT_BYTES = 16 * 1024 * 1024


# ---------------------------------------------------------------------------------------------- compiled kernels


@njit(cache=True, nogil=True, inline="always")
def tail_may_stay(state, b, s, x, y, width, height, wrapped, food):
    """Is (x, y) the tail of another live snake of game b that has food next to its head (``food`` (cells,) 1 on
    food), so that it may eat this turn and keep its tail there?"""
    for o in range(state.length.shape[1]):
        n = state.length[b, o]
        if o == s or state.elim_cause[b, o] != ALIVE or n < 2:
            continue
        if state.body[b, o, n - 1, 0] != x or state.body[b, o, n - 1, 1] != y:
            continue
        ox, oy = np.int64(state.body[b, o, 0, 0]), np.int64(state.body[b, o, 0, 1])
        for e in range(4):
            fx, fy = ox + DX[e], oy + DY[e]
            if wrapped:
                fx %= width
                fy %= height
            if 0 <= fx < width and 0 <= fy < height and food[fx + fy * width]:
                return True
    return False


@njit(cache=True, nogil=True)
def assess_moves(state, params, wrapped, b, s, rank, space):
    """Fill rank (4,) int64 with SURE_DEATH / RISKY / SAFE and space (4,) int64 with the reachable cells of each move
    of snake s in game b (0 for SURE_DEATH moves)."""
    width, height = params[P_WIDTH], params[P_HEIGHT]
    damage = params[P_HAZARD_DAMAGE]
    cells = width * height
    grid = np.empty(cells, np.uint8)
    food = np.zeros(cells, np.uint8)
    hazards = np.empty(cells, np.int64)
    free_at = np.empty(cells, np.int64)
    dist = np.empty(cells, np.int64)
    queue = np.empty(cells, np.int64)
    mark_obstacles(state, b, width, height, grid)
    free_after(state, b, width, height, free_at)
    for i in range(state.food_count[b]):
        food[state.food[b, i, 0] + state.food[b, i, 1] * width] = 1
    count_hazards(state, b, width, height, hazards)
    health = np.int64(state.health[b, s])
    for d in range(4):
        x, y = step_target(state, params, wrapped, b, s, d)
        rank[d] = SURE_DEATH
        space[d] = 0
        if x < 0 or x >= width or y < 0 or y >= height:
            continue
        c = x + y * width
        if grid[c]:
            continue
        if food[c] == 0 and health - 1 - damage * hazards[c] <= 0:
            continue  # starved, or worn out by hazards (food on the cell would have cancelled both)
        if next_to_head(state, b, s, x, y, width, height, wrapped, True) or tail_may_stay(state, b, s, x, y, width,
                                                                                        height, wrapped, food):
            rank[d] = RISKY  # a head-to-head it could lose, or a tail that may not move
        else:
            rank[d] = SAFE
        space[d] = reachable(c, width, height, wrapped, free_at, dist, queue)


# ---------------------------------------------------------------------------------------------- search


def replicate(games: Games, copies: int, seeds: np.ndarray) -> Games:
    """``copies`` copies of game 0 of ``games`` in one batch, each with its own random stream (``seeds`` (copies,))."""
    state = GameState(*(np.repeat(a[:1], copies, axis=0) for a in games.state))
    state.rng[:] = seeds
    return Games.from_state(games.settings, state)


def rollout_values(games: Games, s: int, moves: list[int], *, deadline: float, depth: int = 8,
                   rollouts_per_round: int = 8, max_rollouts: int = 64, seed: int = 0) -> tuple[np.ndarray, int]:
    """Monte-Carlo survival of each first move of snake s in game 0, on the engine, until ``deadline``.

    Every rollout plays the first move, then ``depth - 1`` more turns: snake s by the ``flood`` bot, the others by
    the ``safe`` bot (non-fatal moves, random among equals, so a longer head sometimes takes the cell s wanted),
    with food spawning from each copy's own stream. A rollout scores the share of its turns s was alive for (1 when s
    is alive at the end, winners included). Rounds of ``rollouts_per_round`` copies per move run while the last
    round's time still fits before ``deadline`` (``time.perf_counter()`` seconds), up to ``max_rollouts`` per move;
    a round copies the board at most ``MAX_ROLLOUT_BYTES`` worth.

    Returns (values (4,) float64: mean score of each move in ``moves``, NaN for the others; rollouts per move).
    """
    values = np.full(4, np.nan)
    per_copy = sum(a[:1].nbytes for a in games.state) * len(moves)
    rollouts_per_round = min(rollouts_per_round, MAX_ROLLOUT_BYTES // max(per_copy, 1))
    if not moves or rollouts_per_round < 1:
        return values, 0
    totals = np.zeros(len(moves))
    done = 0
    rng = np.random.default_rng(seed)
    mine, theirs = make_bot("flood", seed), make_bot("safe", seed + 1)
    round_time = 0.0
    while done < max_rollouts:
        started = time.perf_counter()
        if started + round_time > deadline:
            break
        k = min(rollouts_per_round, max_rollouts - done)
        batch = replicate(games, len(moves) * k, rng.integers(0, 2**63 - 1, len(moves) * k).astype(np.uint64))
        first = np.repeat(np.asarray(moves, np.int8), k)  # (B,) move i's copies are rows i*k .. i*k + k - 1
        alive_turns = np.zeros(batch.batch_size)
        running = ~batch.finished()
        steps = 0
        for step in range(depth):
            if not running.any() or (step > 0 and time.perf_counter() > deadline):
                break
            plan = theirs(batch).astype(np.int8)
            plan[:, s] = first if step == 0 else mine(batch)[:, s]
            plan[~batch.alive()] = NO_MOVE
            running &= ~batch.step(plan, mask=running)
            steps += 1
            alive_turns += batch.alive()[:, s]
        score = np.where(batch.alive()[:, s], 1.0, alive_turns / max(steps, 1))
        totals += score.reshape(len(moves), k).sum(axis=1)
        done += k
        round_time = time.perf_counter() - started
    if done:
        values[np.asarray(moves)] = totals / done
    return values, done


# ---------------------------------------------------------------------------------------------- the layer


@dataclass(frozen=True)
class Decision:
    """The move played and why."""

    move: int  # 0 up, 1 down, 2 left, 3 right
    policy_move: int  # the policy's favourite among all moves
    reason: str  # "policy", "safety" (tier), "space" (near tie), "search", "doomed" (every move is sure death)
    rank: tuple[int, ...]  # (4,) SURE_DEATH / RISKY / SAFE
    space: tuple[int, ...]  # (4,) reachable cells
    survival: tuple[float, ...] = ()  # (4,) search values (NaN: not searched); empty without search
    rollouts: int = 0  # rollouts per move


@dataclass(frozen=True)
class SafetyLayer:
    """Turns a policy's move preferences into a move that never dies avoidably (see the module docstring).

    Args:
        enabled: False plays the policy's favourite as is (the raw policy, for comparisons).
        near_tie: moves within this probability of the favourite count as tied; the roomier one wins.
        search_ms: milliseconds of rollouts per move decision at most (0: no search); the request's deadline
            caps it further.
        search_depth: turns a rollout plays.
        max_rollouts: rollouts per move at most (reached sooner than the time limit on small boards).
        search_tolerance: moves whose survival is within this of the best one's are all kept.
    """

    enabled: bool = True
    near_tie: float = 0.1
    search_ms: float = 0.0
    search_depth: int = 8
    max_rollouts: int = 32
    search_tolerance: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.near_tie <= 1.0:
            raise ValueError(f"near_tie must be a probability in [0, 1], got {self.near_tie}")
        if self.search_ms < 0 or self.search_depth < 1 or self.max_rollouts < 1 or self.search_tolerance < 0:
            raise ValueError(f"search settings must be search_ms >= 0, search_depth >= 1, max_rollouts >= 1 and "
                             f"search_tolerance >= 0, got {self.search_ms}, {self.search_depth}, "
                             f"{self.max_rollouts}, {self.search_tolerance}")

    def choose(self, games: Games, s: int, preferences: np.ndarray, *, deadline: float | None = None,
               seed: int = 0) -> Decision:
        """The move for snake s of game 0 of ``games``.

        Args:
            preferences: (4,) the policy's probability (or any score where larger is better) of each move.
            deadline: ``time.perf_counter()`` time by which the search must stop (None: ``search_ms`` from now).
            seed: seeds the rollouts (a game id and turn, so a board replays the same).
        """
        prefs = np.asarray(preferences, np.float64).reshape(4)
        favourite = int(np.argmax(prefs))
        rank = np.zeros(4, np.int64)
        space = np.zeros(4, np.int64)
        assess_moves(games.state, games.params, games.settings.rules.wrapped, 0, s, rank, space)
        ranks, spaces = tuple(int(r) for r in rank), tuple(int(c) for c in space)
        if not self.enabled:
            return Decision(favourite, favourite, "policy", ranks, spaces)
        alive = [d for d in range(4) if rank[d] != SURE_DEATH]
        if not alive:
            return Decision(favourite, favourite, "doomed", ranks, spaces)
        length = int(games.state.length[0, s])
        tier = {d: (space[d] >= length, rank[d] == SAFE) for d in alive}
        keep = alive
        survival: tuple[float, ...] = ()
        rollouts = 0
        if self.search_ms > 0 and len(alive) > 1:
            stop = time.perf_counter() + self.search_ms / 1000.0
            stop = stop if deadline is None else min(stop, deadline)
            values, rollouts = rollout_values(games, s, alive, deadline=stop, depth=self.search_depth,
                                              max_rollouts=self.max_rollouts, seed=seed)
            survival = tuple(float(v) for v in values)
            if rollouts:
                best = max(values[d] for d in alive)
                keep = [d for d in alive if values[d] >= best - self.search_tolerance]
        searched_out = favourite in alive and favourite not in keep
        top = max(tier[d] for d in keep)
        keep = [d for d in keep if tier[d] == top]
        pick = max(keep, key=lambda d: prefs[d])  # the first of equal preferences, as argmax
        reason = "policy" if pick == favourite else "search" if searched_out else "safety"
        tied = [d for d in keep if prefs[d] >= prefs[pick] - self.near_tie and space[d] > space[pick]]
        if tied:
            pick = max(tied, key=lambda d: (space[d], prefs[d]))
            reason = "space"
        return Decision(pick, favourite, reason, ranks, spaces, survival, rollouts)
