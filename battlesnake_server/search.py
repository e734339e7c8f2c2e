"""Search driven by the learned network: a breadth-first, simultaneous-move paranoid search over the engine.

``NetworkSearch.choose`` picks a move for one snake (``me``) of a batch-of-one ``Games``:

1. The tree grows one whole level (one turn) at a time. A level's nodes are the boards after every joint move
   considered at each node of the level above, stepped together by the engine as one batch (every ruleset and map
   the engine plays, food spawning from each board's own random stream).
2. Every new node is judged in one batched forward pass of the exported network: my value (the critic's estimate of
   my return) and each snake's move probabilities. Nodes where I am out are worth ``LOSS`` (a little less the sooner
   it happens), nodes where I am the last snake ``WIN``, a turn where the last snakes all leave together ``DRAW``.
3. Which moves a node considers: every move of mine that is not certain death (walls, bodies) at the root; deeper,
   my ``top_k`` most probable ones. Each opponent whose head is within ``radius`` moves of mine does the same (its
   own probabilities, from its own view); farther opponents play their most probable move only. So the search
   widens where the fight is and stays cheap on crowded boards.
4. Backed up paranoid: a node is worth, for me, the best of my moves against the worst joint reply of the searched
   opponents (``max_m min_o``); simultaneous moves are thus judged as if the opponents knew mine, which is what
   keeps the search away from head-to-heads it could lose.
5. It is anytime: after each completed level the move is decided from the deepest complete level. The next level is
   started only when its expected cost (the last level's cost per node times its node count) fits before the
   deadline, and a level that runs past the deadline is dropped. A node budget (``max_nodes``) makes results
   independent of the machine's speed for benchmarks.

The network comes from ``battlesnake_policy`` and must have a value output (``LoadedPolicy.has_value``); its
encoder is the one the model was trained with (or the window the server picks on another board).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from battlesnake_gym.engine import Games, GameState
from battlesnake_gym.features import territory_counts
from battlesnake_gym.observations import ObservationEncoder, action_mask
from battlesnake_policy import ModelError

#: Node values for me: out of the game, the last snake standing, the last snakes leaving together.
LOSS, WIN, DRAW = -1.0, 1.0, 0.0
#: A loss a turn later is worth this much more (so the search puts off a loss it cannot avoid).
LATER_LOSS = 0.001
#: The values of positions that go on are clipped to this, so a sure outcome always outweighs an estimate.
ESTIMATE_LIMIT = 0.95
#: Search time per move the server uses unless told otherwise, and the arena's usual move timeout.
DEFAULT_NETWORK_SEARCH_MS = 250.0
ARENA_TIMEOUT_MS = 500
#: How much of a leaf's value is the territory score (the rest is the network's value). Half and half: with it the
#: 10-minute main job's model searching 500 boards a move won 97 of 100 1v1 games against flood (README, arena).
DEFAULT_TERRITORY_WEIGHT = 0.5


@dataclass(frozen=True)
class SearchSettings:
    """How wide and deep the search may grow.

    Args:
        top_k: moves a snake considers below the root (its most probable ones; never certain deaths).
        radius: opponents whose head is at most this many moves from mine are searched; the others play their
            most probable move.
        max_depth: turns the search looks ahead at most.
        max_nodes: boards in the whole tree at most (a machine-independent budget; the deadline also applies).
        max_level_nodes: boards in one level at most (memory bound: a level that would hold more is not started).
        territory_weight: the share of a leaf's value that is ``territory_value`` (my territory and length against
            the best other snake's); the rest is the network's value. 0: the network alone.
    """

    top_k: int = 2
    radius: int = 6
    max_depth: int = 12
    max_nodes: int = 100_000
    max_level_nodes: int = 8_192
    territory_weight: float = DEFAULT_TERRITORY_WEIGHT

    def __post_init__(self) -> None:
        for name in ("top_k", "max_depth", "max_nodes", "max_level_nodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"search setting {name} must be a positive integer, got {value!r}")
        if isinstance(self.radius, bool) or not isinstance(self.radius, int) or self.radius < 0:
            raise ValueError(f"search setting radius must be an integer >= 0, got {self.radius!r}")
        if not 0.0 <= self.territory_weight <= 1.0:
            raise ValueError(f"search setting territory_weight must lie in [0, 1], got {self.territory_weight!r}")
        if self.top_k > 4:
            raise ValueError(f"search setting top_k must be at most 4 (there are four moves), got {self.top_k}")


@dataclass
class SearchResult:
    """A search's answer and what it took."""

    move: int  # 0 up, 1 down, 2 left, 3 right
    depth: int  # turns looked ahead by the deepest complete level (0: the network's own favourite)
    nodes: int  # boards stepped and judged (for this root)
    values: tuple[float, ...]  # (4,) backed-up value of each root move for me (NaN: not considered)
    seconds: float
    prior: tuple[float, ...] = field(default=())  # (4,) the network's probabilities at the root


@dataclass
class _Level:
    """One level of the tree: N boards, who they come from, and what the network said of them."""

    games: Games | None  # N boards
    parent: np.ndarray  # (N,) index of the parent node in the level above (the root's own index at the roots)
    my_move: np.ndarray  # (N,) the move the searching snake made into this node
    value: np.ndarray  # (N,) float64 the node's value for the searching snake (network or terminal), or backed up
    terminal: np.ndarray  # (N,) bool: no children (the searching snake is out, or the game is over)
    probs: np.ndarray  # (N, S, 4) float32 each live snake's move probabilities (0 for others)
    allowed: np.ndarray  # (N, S, 4) bool: moves that are not certain death
    root: np.ndarray | None = None  # (N,) which search (root) the node belongs to


class NetworkSearch:
    """The search of the module docstring for one exported network.

    Args:
        policy: a loaded policy with a value output (``battlesnake_policy.LoadedPolicy``).
        settings: width, depth and node budgets.
    """

    def __init__(self, policy, settings: SearchSettings | None = None):
        if not getattr(policy, "has_value", False):
            raise ModelError(f"{getattr(policy, 'path', policy)} has no value output, so it cannot drive a search: "
                             f"export the run again with this version (or serve it without search)")
        self.policy = policy
        self.settings = settings or SearchSettings()

    # ------------------------------------------------------------------ the network

    def _judge(self, games: Games, encoder: ObservationEncoder, me: np.ndarray, depth: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(value (N,) for each node's searching snake ``me`` (N,), terminal (N,), probs (N, S, 4), allowed
        (N, S, 4)) of N boards: one forward pass over every live snake of every board that goes on."""
        alive = games.alive()  # (N, S)
        n, s_count = alive.shape
        nodes = np.arange(n)
        mine = alive[nodes, me]
        others = alive.sum(axis=1) - mine
        over = ~mine | ((others == 0) & (s_count > 1))
        value = np.zeros(n)
        value[mine & over] = WIN
        out = ~mine
        value[out] = LOSS + LATER_LOSS * depth
        if s_count > 1:  # I left on the turn the last of the others did: a draw
            turns = games.state.elim_turn
            last_other = np.where(alive, np.iinfo(np.int32).max, turns)
            last_other[nodes, me] = -1
            value[out & (others == 0) & (turns[nodes, me] >= last_other.max(axis=1))] = DRAW
        allowed = action_mask(games).astype(bool)  # (N, S, 4)
        probs = np.zeros((n, s_count, 4), np.float32)
        rows, slots = np.nonzero(alive & ~over[:, None])
        if rows.size:
            logits, values = self.policy.evaluate(encoder.encode(games)[rows, slots], allowed[rows, slots])
            z = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs[rows, slots] = z / z.sum(axis=1, keepdims=True)
            is_me = slots == me[rows]
            open_rows = rows[is_me]
            value[open_rows] = values[is_me]
            weight = self.settings.territory_weight
            if weight:
                h = territory_value(games, me)[open_rows]
                value[open_rows] = (1 - weight) * value[open_rows] + weight * h
            value[open_rows] = np.clip(value[open_rows], -ESTIMATE_LIMIT, ESTIMATE_LIMIT)
        return value, over, probs, allowed

    # ------------------------------------------------------------------ expansion

    def _expand(self, level: _Level, me: np.ndarray, root: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For every open node of ``level`` (searching snake ``me`` (N,)): its children as (parent (M,), my move
        (M,), joint moves (M, S) int8)."""
        k = 4 if root else self.settings.top_k
        state = level.games.state
        return _expand_kernel(state.body, state.elim_cause, level.terminal, level.probs, level.allowed,
                              np.asarray(me, np.int64), k, self.settings.radius)

    # ------------------------------------------------------------------ backup

    @staticmethod
    def _backup(levels: list[_Level], roots: int | None = None) -> np.ndarray:
        """Paranoid values of each root's moves from the deepest level up: (roots, 4) float64, NaN for moves not
        tried (``roots``: the roots' count, ``len(levels[0].value)`` by default; levels[0] holds the roots)."""
        for upper, lower in zip(reversed(levels[:-1]), reversed(levels[1:])):
            best = np.full(len(upper.value), -np.inf)
            for m in range(4):
                rows = lower.my_move == m
                if not rows.any():
                    continue
                worst = np.full(len(upper.value), np.inf)
                np.minimum.at(worst, lower.parent[rows], lower.value[rows])
                best = np.maximum(best, np.where(np.isinf(worst), -np.inf, worst))  # inf: the node did not try m
            opened = ~upper.terminal & np.isfinite(best)
            upper.value[opened] = best[opened]
        roots = len(levels[0].value) if roots is None else roots
        root_values = np.full((roots, 4), np.inf)
        if len(levels) > 1:
            first = levels[1]
            np.minimum.at(root_values, (first.parent, first.my_move), first.value)
        root_values[np.isinf(root_values)] = np.nan
        return root_values

    # ------------------------------------------------------------------ the search

    def choose(self, games: Games, me: int, encoder: ObservationEncoder, *, deadline: float | None = None
               ) -> SearchResult:
        """The move for snake ``me`` of game 0 of ``games`` (a batch of one; it is not changed).

        Args:
            encoder: how the network sees these boards (the model's encoder, or the window the server picked).
            deadline: ``time.perf_counter()`` time by which the search must have answered (None: the node budget
                alone decides).
        """
        return self.choose_many(games, np.array([me]), encoder, deadline=deadline, rows=np.zeros(1, np.int64))[0]

    def choose_many(self, games: Games, me: np.ndarray, encoder: ObservationEncoder, *,
                    deadline: float | None = None, rows: np.ndarray | None = None) -> list[SearchResult]:
        """One search per game ``rows[i]`` of ``games`` (default: every game) for its snake ``me[i]``, grown
        together: each level of all of them is one engine step and one forward pass, so evaluating many games
        costs far less than searching them one by one. Node budgets apply per search (on average)."""
        started = time.perf_counter()
        settings = self.settings
        rows = np.arange(games.batch_size) if rows is None else np.asarray(rows, np.int64)
        me = np.asarray(me, np.int64)
        count_roots = len(rows)
        root_games = _wrap(games, _take(games.state, rows))
        value, terminal, probs, allowed = self._judge(root_games, encoder, me, 0)
        root_ids = np.arange(count_roots)
        levels = [_Level(root_games, root_ids, np.zeros(count_roots, np.int64), value, terminal, probs, allowed,
                         root_ids)]
        node_me = me
        nodes = np.ones(count_roots, np.int64)
        depth = np.zeros(count_roots, np.int64)
        values = np.full((count_roots, 4), np.nan)
        cost_per_node = None
        while len(levels) <= settings.max_depth:
            level_started = time.perf_counter()
            upper = levels[-1]
            parent, my_moves, joints = self._expand(upper, node_me, root=len(levels) == 1)
            count = len(parent)
            if count == 0 or count > settings.max_level_nodes * count_roots or \
                    nodes.sum() + count > settings.max_nodes * count_roots:
                break
            if deadline is not None and cost_per_node is not None and \
                    level_started + cost_per_node * count > deadline:
                break
            child = _wrap(root_games, _take(upper.games.state, parent))
            child.step(joints)
            if deadline is not None and time.perf_counter() > deadline:
                break
            child_me = node_me[parent]
            value, terminal, probs, allowed = self._judge(child, encoder, child_me, len(levels))
            if deadline is not None and time.perf_counter() > deadline:
                break
            root_of = upper.root[parent]
            levels.append(_Level(child, parent, my_moves, value, terminal, probs, allowed, root_of))
            node_me = child_me
            nodes += np.bincount(root_of, minlength=count_roots)
            depth[np.unique(root_of)] = len(levels) - 1
            cost_per_node = (time.perf_counter() - level_started) / count
            values = self._backup([_copy_values(level) for level in levels], count_roots)
            if terminal.all():
                break
        seconds = time.perf_counter() - started
        root = levels[0]
        results = []
        for i in range(count_roots):
            prior = root.probs[i, me[i]]
            if depth[i] == 0:
                best = np.zeros(4, np.int64)
                _top_moves(prior, root.allowed[i, me[i]], 1, best)
                move = int(best[0])
            else:  # equal values (a lost or won position, a flat value head): the network's favourite among them
                move = int(np.nanargmax(values[i] + 1e-6 * prior))
            results.append(SearchResult(move, int(depth[i]), int(nodes[i]), tuple(float(v) for v in values[i]),
                                        seconds, tuple(float(p) for p in prior)))
        return results


def territory_value(games: Games, me: np.ndarray) -> np.ndarray:
    """(N,) in (-1, 1): the territory and length of snake ``me[i]`` of board i against the best other snake's
    (what minimax snakes score)."""
    alive = games.alive()
    counts = np.empty(alive.shape, np.int64)
    territory_counts(games.state, games.params, games.settings.rules.wrapped, counts)
    cells = games.settings.width * games.settings.height
    nodes = np.arange(len(me))
    lengths = np.where(alive, games.state.length, 0).astype(np.int64)
    if counts.shape[1] == 1:
        return np.tanh(counts[nodes, me] / cells)
    others = np.ones(alive.shape, bool)
    others[nodes, me] = False
    lead = counts[nodes, me] - np.where(others, counts, -1).max(axis=1)
    longer = lengths[nodes, me] - np.where(others, lengths, -1).max(axis=1)
    return np.tanh(3.0 * lead / cells + 0.25 * longer)


def _take(state: GameState, rows: np.ndarray) -> GameState:
    """The games ``rows`` of ``state`` (repeats allowed), as a new state."""
    return GameState(*(np.ascontiguousarray(a[rows]) for a in state))


def _wrap(games: Games, state: GameState) -> Games:
    """``state`` as a batch of games with everything else of ``games`` (settings, stages, map schedule: building
    those again costs milliseconds); capacities as they are: the engine grows them itself when a step needs more."""
    clone = Games.__new__(Games)
    clone.__dict__.update(games.__dict__)
    clone.state = state
    return clone


@njit(cache=True, nogil=True)
def _top_moves(probs, allowed, k, out):
    """The k most probable allowed moves into ``out`` (probability order); returns how many (at least one: the most
    probable move when none is allowed)."""
    count = 0
    taken = np.zeros(4, np.bool_)
    for _ in range(k):
        best = -1
        for d in range(4):
            if allowed[d] and not taken[d] and (best < 0 or probs[d] > probs[best]):
                best = d
        if best < 0:
            break
        taken[best] = True
        out[count] = best
        count += 1
    if count == 0:
        best = 0
        for d in range(1, 4):
            if probs[d] > probs[best]:
                best = d
        out[0] = best
        count = 1
    return count


@njit(cache=True, nogil=True)
def _expand_kernel(body, elim_cause, terminal, probs, allowed, me, k, radius):
    """Children of every open node: (parent (M,), my move (M,), joint moves (M, S) int8); see NetworkSearch."""
    n, s_count = elim_cause.shape
    options = np.empty((n, s_count, 4), np.int64)
    counts = np.zeros((n, s_count), np.int64)  # moves considered per snake (0: not in the game)
    total = 0
    for i in range(n):
        if terminal[i]:
            continue
        m = me[i]
        hx, hy = np.int64(body[i, m, 0, 0]), np.int64(body[i, m, 0, 1])
        children = 1
        for o in range(s_count):
            if elim_cause[i, o] != 0:
                continue
            near = o == m or abs(np.int64(body[i, o, 0, 0]) - hx) + abs(np.int64(body[i, o, 0, 1]) - hy) <= radius
            counts[i, o] = _top_moves(probs[i, o], allowed[i, o], k if near else 1, options[i, o])
            children *= counts[i, o]
        total += children
    parent = np.empty(total, np.int64)
    my_move = np.empty(total, np.int64)
    joints = np.full((total, s_count), -1, np.int8)
    digit = np.zeros(s_count, np.int64)
    row = 0
    for i in range(n):
        if terminal[i]:
            continue
        digit[:] = 0
        while True:  # every combination of the considered moves, the last snake's moves varying fastest
            for o in range(s_count):
                if counts[i, o]:
                    joints[row, o] = options[i, o, digit[o]]
            parent[row] = i
            my_move[row] = joints[row, me[i]]
            row += 1
            o = s_count - 1
            while o >= 0:
                if counts[i, o]:
                    digit[o] += 1
                    if digit[o] < counts[i, o]:
                        break
                    digit[o] = 0
                o -= 1
            if o < 0:
                break
    return parent, my_move, joints


def _copy_values(level: _Level) -> _Level:
    """The level with its own copy of the values, so a backup keeps the network's values for the next one."""
    return _Level(level.games, level.parent, level.my_move, level.value.copy(), level.terminal, level.probs,
                  level.allowed)
