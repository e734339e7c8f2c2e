"""Observation encoders: what every snake of a batch of games sees, as compact uint8 arrays filled by compiled kernels.

An encoder is a pluggable object (pass one into an environment, or build one by name with ``make_encoder``):

- ``shape(settings, num_snakes)``: the per-snake observation shape;
- ``space(settings, num_snakes)``: the matching ``gymnasium.spaces.Box`` (uint8; ``low`` 0, ``high`` the exact bound
  of each element, so models cast to float themselves);
- ``encode(games, out=None)``: ``(B, S, *shape)`` uint8, one observation per snake slot of every game. Eliminated
  snakes get all zeros. With ``out`` given, it is filled in place and returned: nothing is allocated.

Encoders:

- ``egocentric`` (the default): board planes centred on the snake's own head, channels first (``EgocentricEncoder``);
- ``flat-51s``, ``bordered-51s``, ``max-bordered-51s``, ``flat-num``, ``bordered-num``, ``max-bordered-num``: the
  global encodings of the archived AWS SageMaker Battlesnake starter pack, for users migrating from it
  (``LegacyGridEncoder``).

``action_mask(games)`` gives the (B, S, 4) non-fatal-move mask (moves 0 up, 1 down, 2 left, 3 right).

Modules: ``base`` (the interface and ``action_mask``), ``egocentric``, ``territory`` and ``legacy`` (one encoder
family each, with its compiled kernel); every name is importable from this package.

Coordinates: (0, 0) is the bottom-left cell and ``up`` is y + 1. The egocentric planes keep that orientation (row
index grows with y); the legacy grids are drawn top row first, as the starter pack's models were trained.

Example::

    games = Games(GameSettings(), num_snakes=4, batch_size=1024, seed=0)
    encoder = make_encoder("egocentric")
    obs = encoder.encode(games)                # (1024, 4, 10, 21, 21) uint8
    encoder.encode(games, out=obs)             # refill in place after a step: no allocation
    mask = action_mask(games)                  # (1024, 4, 4) uint8
"""

from __future__ import annotations

from .base import ObservationEncoder, action_mask
from .egocentric import (
    EGO_FOOD,
    EGO_HAZARDS,
    EGO_LONGER_HEADS,
    EGO_OFF_BOARD,
    EGO_OTHER_BODIES,
    EGO_OTHER_HEALTH,
    EGO_OWN_BODY,
    EGO_OWN_HEALTH,
    EGO_OWN_LENGTH,
    EGO_SHORTER_HEADS,
    EGOCENTRIC_CHANNELS,
    EgocentricEncoder,
)
from .legacy import (
    LEGACY_BORDER,
    LEGACY_MAX_NUMBER,
    LEGACY_MAX_SIZE,
    Bordered51s,
    BorderedNum,
    Flat51s,
    FlatNum,
    LegacyGridEncoder,
    MaxBordered51s,
    MaxBorderedNum,
)
from .territory import (
    LEAD_OFFSET,
    ROOM_OFFSET,
    TER_HEAD_REACH,
    TER_LENGTH_LEAD,
    TER_MOVE_ROOM,
    TER_MOVE_TERRITORY,
    TER_OTHER_TERRITORY,
    TER_OWN_TERRITORY,
    TERRITORY_CHANNELS,
    TerritoryEncoder,
)

__all__ = [
    "Bordered51s", "BorderedNum", "DEFAULT_ENCODER", "EGOCENTRIC_CHANNELS", "EGO_FOOD", "EGO_HAZARDS",
    "EGO_LONGER_HEADS", "EGO_OFF_BOARD", "EGO_OTHER_BODIES", "EGO_OTHER_HEALTH", "EGO_OWN_BODY", "EGO_OWN_HEALTH",
    "EGO_OWN_LENGTH", "EGO_SHORTER_HEADS", "ENCODERS", "EgocentricEncoder", "Flat51s", "FlatNum", "LEAD_OFFSET",
    "LEGACY_BORDER", "LEGACY_MAX_NUMBER", "LEGACY_MAX_SIZE", "LegacyGridEncoder", "MaxBordered51s", "MaxBorderedNum",
    "ObservationEncoder", "ROOM_OFFSET", "TERRITORY_CHANNELS", "TER_HEAD_REACH", "TER_LENGTH_LEAD", "TER_MOVE_ROOM",
    "TER_MOVE_TERRITORY", "TER_OTHER_TERRITORY", "TER_OWN_TERRITORY", "TerritoryEncoder", "action_mask", "make_encoder",
]

ENCODERS: dict[str, type[ObservationEncoder]] = {
    cls.name: cls
    for cls in (EgocentricEncoder, TerritoryEncoder, Flat51s, Bordered51s, MaxBordered51s, FlatNum, BorderedNum,
                MaxBorderedNum)
}
DEFAULT_ENCODER = "egocentric"


def make_encoder(name: str = DEFAULT_ENCODER, **kwargs) -> ObservationEncoder:
    """The encoder registered as ``name``, built with ``kwargs`` (e.g. ``make_encoder("egocentric", view=11)``)."""
    if name not in ENCODERS:
        raise ValueError(f"unknown observation encoder {name!r}; known: {', '.join(ENCODERS)}")
    return ENCODERS[name](**kwargs)
