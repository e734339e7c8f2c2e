"""Evaluate a policy against the heuristic bots: win, draw and loss rates with 95% Wilson intervals.

The harness is policy-agnostic: a policy is any callable from a batch of one-snake observations and action masks to
actions, so a learned network (wrapped by the training code), a bot (``BotPolicy``) or a hand-written rule can be
measured the same way.

How to run::

    from battlesnake_gym.evaluation import BotPolicy, evaluate
    report = evaluate(BotPolicy("greedy"), opponents=("safe", "flood"), games=200)
    print(report.table())

Results to expect (200 games a pairing, seed 0): ``greedy`` as the policy wins about 3 in 4 1v1 games against ``safe``
(the tournament's order, see ``battlesnake_gym.tournament``); ``random`` as the policy loses nearly every game.

Each (mode, opponent) pairing plays exactly ``games`` games, all started together as one batch (no game is started
after another ends, so short games cannot crowd out long ones). The policy's seat rotates from game to game: it is
snake ``g mod S`` in game ``g``. The last snake alive wins; the policy's snake leaving the game on the same turn as
the last opponent, or any game still running after ``max_turns`` turns, is a draw.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .bots import BOTS, Bot, make_bot
from .engine import Games, GameSettings
from .engine.state import NO_MOVE
from .envs.core import BatchEnv, settings_from
from .observations import ObservationEncoder, make_encoder
from .seating import Seating

#: Evaluation modes: name -> snakes a game.
MODES: dict[str, int] = {"1v1": 2, "ffa4": 4}
DEFAULT_OPPONENTS = ("safe", "greedy", "flood")
#: The normal quantile of a two-sided 95% interval.
Z_95 = 1.959963984540054


# ---------------------------------------------------------------------------------------------------- policies


class Policy(Protocol):
    """What ``evaluate`` plays: maps N snakes' views to their moves.

    Args:
        obs: (N, *obs_shape) uint8, the encoder's view of each live snake of the policy (one per game).
        action_mask: (N, 4) uint8, 1 where a move (0 up, 1 down, 2 left, 3 right) is not certainly fatal.
    Returns:
        (N,) integer actions in [0, 4).
    """

    def __call__(self, obs: np.ndarray, action_mask: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class SeesGames(Protocol):
    """A policy that also reads the boards: ``evaluate`` calls ``set_games`` right before each policy call."""

    def set_games(self, games: Games, rows: np.ndarray, slots: np.ndarray) -> None:
        """The next call's observation i is snake ``slots[i]`` of game ``rows[i]`` of ``games`` ((N,) int64 each)."""


class BotPolicy:
    """A heuristic bot standing in as the policy under test (baselines, and tests of the harness itself).

    It ignores the observations and asks the bot about the boards ``evaluate`` hands over through ``set_games``.

    Args:
        bot: a registered bot name (``battlesnake_gym.bots.BOTS``) or a bot callable ``bot(games) -> (B, S) int8``.
        seed: seeds a named bot's tie-breaking.
    """

    def __init__(self, bot: str | Bot, seed: int = 0):
        if isinstance(bot, str):
            self.name = bot
            self.bot = make_bot(bot, seed)
        elif callable(bot):
            self.name = getattr(bot, "name", type(bot).__name__)
            self.bot = bot
        else:
            raise ValueError(f"bot must be a registered name ({', '.join(BOTS)}) or a callable, got {bot!r}")
        self._where: tuple[Games, np.ndarray, np.ndarray] | None = None

    def set_games(self, games: Games, rows: np.ndarray, slots: np.ndarray) -> None:
        self._where = (games, rows, slots)

    def __call__(self, obs: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
        if self._where is None:
            raise ValueError("a BotPolicy needs the boards: call set_games(games, rows, slots) first "
                             "(evaluate does this)")
        games, rows, slots = self._where
        if len(obs) != len(rows):
            raise ValueError(f"got {len(obs)} observations for {len(rows)} snakes named by set_games")
        return self.bot(games)[rows, slots].astype(np.int64)

    def __repr__(self) -> str:
        return f"BotPolicy({self.name!r})"


# ---------------------------------------------------------------------------------------------------- statistics


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (``z`` = 1.96: 95%), clipped to [0, 1].

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or ``trials`` successes.
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got successes={successes}, "
                         f"trials={trials}")
    p = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z / denominator * np.sqrt(p * (1.0 - p) / trials + z2 / (4 * trials * trials))
    low = 0.0 if successes == 0 else max(0.0, float(centre - half))  # exact ends: no rounding crumbs at 0 and 1
    high = 1.0 if successes == trials else min(1.0, float(centre + half))
    return low, high


@dataclass(frozen=True)
class PairingResult:
    """The policy's results in one (mode, opponent) pairing; counts are games."""

    mode: str  # a key of MODES
    opponent: str  # the bot in every other seat
    num_snakes: int  # snakes a game
    games: int
    wins: int  # the policy's snake was the last one alive
    draws: int  # it left on the same turn as the last opponent, or the game hit max_turns
    losses: int  # it left while an opponent was still in the game
    mean_turns: float  # turns a game lasted (to its end or max_turns)
    mean_length: float  # the policy snake's length at the end of the game (or when it was eliminated)
    seat_games: tuple[int, ...]  # (num_snakes,) games the policy played in each snake slot
    seat_wins: tuple[int, ...]  # (num_snakes,) of those, games it won

    @property
    def parity(self) -> float:
        """The win rate of a policy exactly as strong as the opponents: 1 / snakes a game."""
        return 1.0 / self.num_snakes

    @property
    def win_rate(self) -> float:
        return self.wins / self.games

    @property
    def draw_rate(self) -> float:
        return self.draws / self.games

    @property
    def loss_rate(self) -> float:
        return self.losses / self.games

    @property
    def win_interval(self) -> tuple[float, float]:
        """95% Wilson interval of the win rate."""
        return wilson_interval(self.wins, self.games)

    @property
    def draw_interval(self) -> tuple[float, float]:
        return wilson_interval(self.draws, self.games)

    @property
    def loss_interval(self) -> tuple[float, float]:
        return wilson_interval(self.losses, self.games)

    def to_dict(self) -> dict:
        """JSON-able: the counts, rates, intervals ([low, high]) and parity."""
        return {
            "mode": self.mode, "opponent": self.opponent, "num_snakes": self.num_snakes, "games": self.games,
            "wins": self.wins, "draws": self.draws, "losses": self.losses,
            "win_rate": self.win_rate, "win_interval": list(self.win_interval),
            "draw_rate": self.draw_rate, "draw_interval": list(self.draw_interval),
            "loss_rate": self.loss_rate, "loss_interval": list(self.loss_interval),
            "parity": self.parity, "mean_turns": self.mean_turns, "mean_length": self.mean_length,
            "seat_games": list(self.seat_games), "seat_wins": list(self.seat_wins),
        }


@dataclass(frozen=True)
class EvaluationReport:
    """Every pairing's result, in the order played (modes outer, opponents inner), and how they were played."""

    results: tuple[PairingResult, ...]
    settings: GameSettings
    encoder: str  # the encoder's name
    seed: int
    max_turns: int

    def __getitem__(self, key: tuple[str, str]) -> PairingResult:
        """``report["1v1", "safe"]``: the result of one (mode, opponent) pairing."""
        for result in self.results:
            if (result.mode, result.opponent) == key:
                return result
        raise KeyError(f"no pairing {key!r}; played: {[(r.mode, r.opponent) for r in self.results]}")

    def to_dict(self) -> dict:
        """JSON-able: the settings (pythonic names), encoder, seed, max_turns and every pairing's ``to_dict``."""
        settings = {name: getattr(self.settings, name) for name in GameSettings.__dataclass_fields__}
        return {"settings": settings, "encoder": self.encoder, "seed": self.seed, "max_turns": self.max_turns,
                "results": [r.to_dict() for r in self.results]}

    def table(self) -> str:
        """A text table, one row per pairing: W-D-L, the rates with 95% intervals, parity, mean turns and length."""
        header = ("mode", "opponent", "games", "W-D-L", "win rate [95% CI]", "draws", "losses", "parity",
                  "turns", "length")
        rows = [header]
        for r in self.results:
            (wl, wh), (dl, dh), (ll, lh) = r.win_interval, r.draw_interval, r.loss_interval
            rows.append((r.mode, r.opponent, str(r.games), f"{r.wins}-{r.draws}-{r.losses}",
                         f"{r.win_rate:6.1%} [{wl:.1%}, {wh:.1%}]", f"{r.draw_rate:.1%} [{dl:.1%}, {dh:.1%}]",
                         f"{r.loss_rate:.1%} [{ll:.1%}, {lh:.1%}]", f"{r.parity:.0%}", f"{r.mean_turns:.1f}",
                         f"{r.mean_length:.1f}"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                 for row in rows]
        s = self.settings
        title = (f"{s.width}x{s.height} {s.ruleset}/{s.map}, encoder {self.encoder}, seed {self.seed}, "
                 f"max {self.max_turns} turns")
        return "\n".join([title, *lines])


# ---------------------------------------------------------------------------------------------------- evaluation


def _names(value: str | Sequence[str], known: Sequence[str], what: str) -> list[str]:
    """A non-empty list of distinct known names (a single string is one name)."""
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise ValueError(f"{what}s must name at least one of {', '.join(known)}, got {value!r}")
    for name in names:
        if name not in known:
            raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return list(dict.fromkeys(names))


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _pairing_seeds(seed: int, mode: str, opponent: str) -> tuple[int, int]:
    """(game seed, bot seed) of one pairing, fixed by ``seed`` and the pairing alone (not by the other pairings)."""
    key = [seed, zlib.crc32(mode.encode()), zlib.crc32(opponent.encode())]
    games_seed, bot_seed = np.random.SeedSequence(key).generate_state(2, np.uint64)
    return int(games_seed >> np.uint64(1)), int(bot_seed >> np.uint64(1))


def _checked_actions(actions: object, count: int) -> np.ndarray:
    """The policy's answer as (count,) int64, or a ValueError naming what is wrong with it."""
    actions = np.asarray(actions)
    if actions.shape != (count,):
        raise ValueError(f"the policy must return ({count},) actions for {count} observations, got shape "
                         f"{actions.shape}")
    if actions.dtype.kind not in "iu":
        raise ValueError(f"the policy must return integer actions, got dtype {actions.dtype}")
    bad = (actions < 0) | (actions > 3)
    if bad.any():
        raise ValueError(f"the policy returned action {actions[bad][0]}, not in 0..3 (0 up, 1 down, 2 left, 3 right)")
    return actions.astype(np.int64, copy=False)


#: Outcomes of a game for the policy's snake.
WIN, DRAW, LOSS = 1, 0, -1


def policy_outcomes(games: Games, seat: np.ndarray) -> np.ndarray:
    """(B,) int8: WIN, DRAW or LOSS of snake ``seat[b]`` ((B,) ints) in each game, judged on the boards as they are.

    WIN: it is the only snake left. LOSS: it is out and some other snake left later or is still in. DRAW: the rest,
    i.e. it left on the same turn as the last of the others (elimination turns are equal), or it and another are
    both still in (a game cut at ``max_turns``).
    """
    state = games.state
    rows = np.arange(games.batch_size)
    seat = np.asarray(seat)
    if (seat.shape != (games.batch_size,) or seat.dtype.kind not in "iu"
            or ((seat < 0) | (seat >= games.num_snakes)).any()):
        raise ValueError(f"seat must be ({games.batch_size},) snake slots in [0, {games.num_snakes}), got {seat!r}")
    alive = games.alive()
    others = np.ones(alive.shape, np.bool_)
    others[rows, seat] = False
    mine_alive = alive[rows, seat]
    others_alive = (alive & others).any(axis=1)
    last_other_out = np.where(others & ~alive, state.elim_turn, -1).max(axis=1)
    outcome = np.full(games.batch_size, DRAW, np.int8)
    outcome[mine_alive & ~others_alive] = WIN
    outcome[~mine_alive & (others_alive | (last_other_out > state.elim_turn[rows, seat]))] = LOSS
    return outcome


def play_pairing(policy: Policy, opponent: str, games: int, num_snakes: int, *, settings: GameSettings,
                 encoder: ObservationEncoder, game_seed: int, bot_seed: int, max_turns: int,
                 mode: str = "") -> PairingResult:
    """``games`` games of the policy against ``num_snakes - 1`` copies of bot ``opponent``, played as one batch.

    The policy is snake ``g mod num_snakes`` of game ``g``. Each turn the live policy snakes of all running games are
    gathered into one (N, *obs_shape) call; the bot decides every other snake of the batch in one call.
    """
    env = BatchEnv(settings, num_snakes=num_snakes, batch_size=games, encoder=encoder, max_turns=max_turns,
                   seed=game_seed)
    bots = {opponent: make_bot(opponent, bot_seed)}
    sees_games = isinstance(policy, SeesGames)
    rows = np.arange(games)
    seating = Seating.against("policy", opponent, num_snakes, games, rotate=True)
    seat = seating.seat_of("policy")  # (B,) the policy's snake slot in each game: g mod num_snakes
    running = ~env.games.finished()  # (B,)
    for _ in range(max_turns):
        if not running.any():
            break
        moves = np.full((games, num_snakes), NO_MOVE, np.int64)
        seating.bot_moves(env.games, bots, moves)  # NO_MOVE for eliminated snakes
        playing = np.flatnonzero(running & env.games.alive()[rows, seat])
        if playing.size:
            slots = seat[playing]
            if sees_games:
                policy.set_games(env.games, playing, slots)
            actions = policy(env.obs[playing, slots], env.action_mask[playing, slots])
            moves[playing, slots] = _checked_actions(actions, playing.size)
        running &= ~env.step(moves, mask=running).game_done

    outcome = policy_outcomes(env.games, seat)
    won, lost = outcome == WIN, outcome == LOSS
    state = env.games.state
    seat_games = np.bincount(seat, minlength=num_snakes)
    seat_wins = np.bincount(seat[won], minlength=num_snakes)
    return PairingResult(
        mode=mode or f"{num_snakes} snakes", opponent=opponent, num_snakes=num_snakes, games=games,
        wins=int(won.sum()), draws=int((~won & ~lost).sum()), losses=int(lost.sum()),
        mean_turns=float(state.turn.mean()), mean_length=float(state.length[rows, seat].mean()),
        seat_games=tuple(int(n) for n in seat_games), seat_wins=tuple(int(n) for n in seat_wins),
    )


def evaluate(policy: Policy, opponents: str | Sequence[str] = DEFAULT_OPPONENTS, games: int = 200,
             modes: str | Sequence[str] = ("1v1", "ffa4"), settings: GameSettings | Mapping | None = None,
             encoder: str | ObservationEncoder = "egocentric", seed: int = 0, max_turns: int = 1000
             ) -> EvaluationReport:
    """The policy against every opponent bot in every mode, ``games`` games a pairing.

    Args:
        policy: a ``Policy``; one that also has ``set_games`` (``SeesGames``, e.g. ``BotPolicy``) is told the boards.
        opponents: registered bot names (``battlesnake_gym.bots.BOTS``); in ``ffa4`` all three opponents are that bot.
        games: games a (mode, opponent) pairing, all played as one batch.
        modes: keys of ``MODES``: ``1v1`` (2 snakes, parity 50%) and ``ffa4`` (4 snakes, parity 25%).
        settings: GameSettings or a mapping of its fields; 11x11 standard if None.
        encoder: an ObservationEncoder or its registered name; what the policy sees.
        seed: fixes every pairing's boards and the bots' tie-breaking (each pairing independently of the others).
        max_turns: a game still running after this many turns is a draw.
    Returns:
        An ``EvaluationReport`` (``.table()``, ``.to_dict()``, ``report[mode, opponent]``).
    """
    if not callable(policy):
        raise ValueError(f"policy must be callable as policy(obs, action_mask), got {policy!r}")
    opponent_names = _names(opponents, list(BOTS), "opponent")
    mode_names = _names(modes, list(MODES), "mode")
    games = _count("games", games)
    max_turns = _count("max_turns", max_turns)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    settings = settings_from(settings)
    encoder = make_encoder(encoder) if isinstance(encoder, str) else encoder
    if not isinstance(encoder, ObservationEncoder):
        raise ValueError(f"encoder must be a registered name or an ObservationEncoder, got {encoder!r}")
    results = []
    for mode in mode_names:
        for opponent in opponent_names:
            game_seed, bot_seed = _pairing_seeds(int(seed), mode, opponent)
            results.append(play_pairing(policy, opponent, games, MODES[mode], settings=settings, encoder=encoder,
                                        game_seed=game_seed, bot_seed=bot_seed, max_turns=max_turns, mode=mode))
    return EvaluationReport(results=tuple(results), settings=settings, encoder=encoder.name or repr(encoder),
                            seed=int(seed), max_turns=max_turns)


def record_game(policy: Policy, opponent: str, *, settings: GameSettings | Mapping | None = None,
                encoder: str | ObservationEncoder = "egocentric", max_turns: int = 500, num_snakes: int = 4,
                seed: int = 7) -> list[dict]:
    """One game of the policy (snake 0) against ``num_snakes - 1`` copies of bot ``opponent``, as the list of its
    boards (trace-format JSON, ``board_to_json``), from the start to the policy's end or the game's.

    Draw it with ``battlesnake_gym.render`` (``save_gif``, ``save_html``, ``render_text``).
    """
    from .engine import board_to_json

    settings = settings_from(settings)
    env = BatchEnv(settings, num_snakes=num_snakes, batch_size=1, encoder=encoder, max_turns=max_turns, seed=seed)
    bots = {opponent: make_bot(opponent, seed)}
    sees_games = isinstance(policy, SeesGames)
    seating = Seating.against("policy", opponent, num_snakes)
    seat = seating.seat_of("policy")  # (1,): snake 0
    boards = [board_to_json(env.games.state, settings.width, settings.height)]
    while True:
        moves = np.full((1, num_snakes), NO_MOVE, np.int64)
        seating.bot_moves(env.games, bots, moves)
        if env.games.alive()[0, seat[0]]:
            if sees_games:
                policy.set_games(env.games, np.zeros(1, np.int64), seat)
            moves[0, seat[0]] = _checked_actions(policy(env.obs[0, seat], env.action_mask[0, seat]), 1)[0]
        result = env.step(moves)
        boards.append(board_to_json(env.games.state, settings.width, settings.height))
        if result.game_done[0] or not env.games.alive()[0, seat[0]]:
            return boards

