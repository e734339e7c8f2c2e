"""Who plays which snake: the one seating helper of the env, the training pool, evaluation and the tournament.

A ``Seating`` says, for a batch of B games of S snakes, which player plays each snake: ``player[b, s]`` is an index
into ``players``. A player is a name: a role (``"learner"``, ``"policy"``) or a bot (``battlesnake_gym.bots``).
A player may hold several seats of a game (copies of one bot) or none (the self-play games of the training pool).

Every seating is built from lineups: the players of a game in seating order. Without rotation position ``k`` is snake
``k``; with rotation game ``g`` seats position ``k`` at snake ``(k + g) mod S``, so that over S consecutive games every
player takes every snake (starting positions differ by snake, so a fair comparison rotates).

The constructors are the seatings this project plays:

- ``Seating.against``: one player (the learner, a policy under evaluation) against bots, in snake 0 or rotating:
  the Gymnasium envs (``battlesnake_gym.envs``), ``evaluation.play_pairing`` and ``evaluation.record_game`` (the
  run's replay);
- ``Seating.pool``: the training opponent pool (``battlesnake_rllib.opponents``): a share of the games puts the pool's
  entries, taking turns game by game, in every snake but the learner's snake 0; the learner plays all the others;
- ``Seating.rotating``: N players in every game, rotated (the tournament's matches and free-for-alls).

``Seating.bot_moves`` lets the bots move their seats. Pure numpy, no Ray or torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .engine import Games, RulesError


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def opponent_names(opponents: str | Sequence[str], num_snakes: int) -> list[str]:
    """The bots of the ``num_snakes - 1`` opponent seats: one name for all of them, or one name per seat."""
    names = [opponents] * (num_snakes - 1) if isinstance(opponents, str) else list(opponents)
    if len(names) != num_snakes - 1 or not all(isinstance(name, str) for name in names):
        raise RulesError(f"opponents must name one bot or {num_snakes - 1} bots (one per opponent), got {opponents!r}")
    return names


@dataclass(frozen=True, eq=False)
class Seating:
    """The player of every snake of a batch of games (see the module docstring)."""

    players: tuple[str, ...]  # the players, each at most once; ``player`` indexes them
    player: np.ndarray  # (B, S) int64: the index in ``players`` of the player of snake s in game b

    def __post_init__(self) -> None:
        player = np.asarray(self.player)
        if player.ndim != 2 or player.dtype.kind not in "iu" or player.size == 0:
            raise ValueError(f"player must be a non-empty (games, snakes) integer array, got {player!r}")
        if ((player < 0) | (player >= len(self.players))).any():
            raise ValueError(f"player indexes must lie in [0, {len(self.players)}) (players {self.players}), "
                             f"got {player!r}")
        object.__setattr__(self, "player", player.astype(np.int64, copy=False))
        object.__setattr__(self, "players", tuple(self.players))

    # ------------------------------------------------------------------ building

    @classmethod
    def from_lineups(cls, players: Sequence[str], lineups: np.ndarray, *, rotate: bool = False) -> Seating:
        """``lineups`` (B, S) ints: game b's player at position k; ``rotate``: position k sits at snake
        ``(k + b) mod S`` instead of snake k."""
        lineups = np.asarray(lineups, np.int64)
        if lineups.ndim != 2:
            raise ValueError(f"lineups must be (games, snakes), got shape {lineups.shape}")
        if not rotate:
            return cls(tuple(players), lineups.copy())
        games, snakes = lineups.shape
        snake = (np.arange(snakes)[None, :] + np.arange(games)[:, None]) % snakes  # (B, S) snake of each position
        player = np.empty_like(lineups)
        player[np.arange(games)[:, None], snake] = lineups
        return cls(tuple(players), player)

    @classmethod
    def against(cls, first: str, opponents: str | Sequence[str], num_snakes: int, games: int = 1, *,
                rotate: bool = False) -> Seating:
        """``first`` in one snake of every game (snake 0, or snake ``g mod num_snakes`` of game g with ``rotate``)
        and bots in the others: ``opponents`` names one bot for all of them or one per seat, in seat order after
        ``first``'s. Players: ``first``, then each bot name once (copies of a bot are one player)."""
        num_snakes, games = _count("num_snakes", num_snakes), _count("games", games)
        names = opponent_names(opponents, num_snakes)
        bots = list(dict.fromkeys(names))
        lineup = [0] + [1 + bots.index(name) for name in names]
        return cls.from_lineups((first, *bots), np.tile(lineup, (games, 1)), rotate=rotate)

    @classmethod
    def pool(cls, learner: str, entries: Sequence[str], share: float, games: int, num_snakes: int) -> Seating:
        """The training pool: in the first ``round(share * games)`` games the pool takes every snake but snake 0,
        entry ``g mod len(entries)`` in game g (entries take turns game by game); ``learner`` plays every other
        snake (self-play). No entries: self-play everywhere. Players: ``learner``, then each entry once."""
        games, num_snakes = _count("games", games), _count("num_snakes", num_snakes)
        if isinstance(share, bool) or not 0.0 <= float(share) <= 1.0:
            raise ValueError(f"the pool's share of the games must lie in [0, 1], got {share!r}")
        entries = [name for name in entries if name]
        names = list(dict.fromkeys(entries))
        lineups = np.zeros((games, num_snakes), np.int64)
        for game in range(int(round(float(share) * games)) if entries else 0):
            lineups[game, 1:] = 1 + names.index(entries[game % len(entries)])
        return cls.from_lineups((learner, *names), lineups)

    @classmethod
    def rotating(cls, players: int, games: int) -> Seating:
        """``players`` players (named "0", "1", ...) in every game of ``players`` snakes, player i in snake
        ``(i + g) mod players`` of game g (in a 1v1: player 0 is snake 0 in even games and snake 1 in odd ones)."""
        players, games = _count("players", players), _count("games", games)
        return cls.from_lineups(tuple(str(i) for i in range(players)), np.tile(np.arange(players), (games, 1)),
                                rotate=True)

    # ------------------------------------------------------------------ reading

    @property
    def num_games(self) -> int:
        return self.player.shape[0]

    @property
    def num_snakes(self) -> int:
        return self.player.shape[1]

    def index(self, who: str | int) -> int:
        """The index of player ``who`` (its name, or the index itself)."""
        if isinstance(who, (int, np.integer)) and not isinstance(who, bool) and 0 <= who < len(self.players):
            return int(who)
        if isinstance(who, str) and who in self.players:
            return self.players.index(who)
        raise ValueError(f"no player {who!r} in this seating; players: {self.players}")

    def seats(self, who: str | int) -> np.ndarray:
        """(B, S) bool: the snakes player ``who`` plays."""
        return self.player == self.index(who)

    def seat_of(self, who: str | int) -> np.ndarray:
        """(B,) int64: the snake player ``who`` plays in each game; it must hold exactly one snake in every game."""
        seats = self.seats(who)
        if not (seats.sum(axis=1) == 1).all():
            raise ValueError(f"player {who!r} does not hold exactly one snake in every game")
        return seats.argmax(axis=1).astype(np.int64)

    def games_with(self, who: str | int) -> np.ndarray:
        """(B,) bool: the games in which player ``who`` plays at least one snake."""
        return self.seats(who).any(axis=1)

    def bot_moves(self, games: Games, bots: Mapping[str, object] | Sequence[object], moves: np.ndarray) -> None:
        """Fill ``moves`` (B, S) at the snakes of each bot player with the bot's moves; each bot decides once, for
        the whole batch. ``bots``: player name -> bot, or one bot per player index. A bot holding no snake of the
        batch is not asked."""
        items = bots.items() if isinstance(bots, Mapping) else enumerate(bots)
        for who, bot in items:
            seats = self.seats(who)
            if seats.any():
                moves[seats] = bot(games)[seats]
