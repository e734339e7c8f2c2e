"""Conformance against the official engine: traces (``shared/traces/FORMAT.md``) and the CLI's game exports.

Step cases: ``after`` and ``game_over`` must be reproduced exactly (royale hazards, which the official engine draws at
random, are checked for legality), ``spawned`` food and hazards for legality. Setup cases: the recorded start and our
own generated starts for the same game must both be legal official starts. CLI exports and request logs: every
turn must follow from the one before under the engine.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .engine import BoardError, Games, GameSettings, RulesError, board_from_json, board_to_json
from .engine.state import MOVE_NAMES
from .render import render_text, side_by_side

Point = tuple[int, int]


def _pts(points: Iterable[Mapping]) -> list[Point]:
    return [(p["x"], p["y"]) for p in points]


def _live(board: Mapping) -> list[Mapping]:
    return [s for s in board["snakes"] if not s.get("eliminated")]


# ---------------------------------------------------------------- legality of random outcomes


def food_spawn_problems(after: Mapping, spawned_food: Sequence[Mapping], settings: GameSettings) -> list[str]:
    """Is ``spawned_food`` what the map's post-update may make of ``after``'s food?"""
    width, height = settings.width, settings.height
    old, new_all = _pts(after["food"]), _pts(spawned_food)
    if new_all[: len(old)] != old:
        return [f"spawned food must keep the existing food {old} in order, got {new_all}"]
    new = new_all[len(old):]
    if not settings.game_map.setup_food and not settings.game_map.spawns_food:
        return [f"map {settings.map!r} spawns no food, got {new}"] if new else []
    blocked = set(old)
    for snake in _live(after):
        body = _pts(snake["body"])
        blocked.update(body)
        hx, hy = body[0]
        blocked.update({(hx - 1, hy), (hx + 1, hy), (hx, hy - 1), (hx, hy + 1)})  # never wrapped
    free = {(x, y) for x in range(width) for y in range(height)} - blocked
    problems = []
    if len(set(new)) != len(new):
        problems.append(f"spawned food repeats a cell: {new}")
    for p in new:
        if p not in free:
            problems.append(f"spawned food {p} is on food, a live snake or next to a live head, or off the board")
    if len(old) < settings.minimum_food:
        expected = min(settings.minimum_food - len(old), len(free))
        if len(new) != expected:
            problems.append(f"{len(old)} food < minimumFood {settings.minimum_food}: expected {expected} new food, "
                            f"got {len(new)}")
    elif len(new) > (1 if settings.food_spawn_chance > 1 else 0):
        problems.append(f"at most {1 if settings.food_spawn_chance > 1 else 0} food may spawn with "
                        f"foodSpawnChance {settings.food_spawn_chance}, got {len(new)}")
    return problems


def royale_box(hazards: Sequence[Point], width: int, height: int) -> tuple[int, int, int, int] | None | str:
    """The safe box (min_x, max_x, min_y, max_y) that ``hazards`` surround, listed x-major then y.

    Returns "empty" when every cell is hazardous and None when the hazards are not of the royale shape.
    """
    hz = set(hazards)
    if len(hz) != len(hazards):
        return None
    safe = [(x, y) for x in range(width) for y in range(height) if (x, y) not in hz]
    if not safe:
        box: tuple[int, int, int, int] | str = "empty"
    else:
        xs, ys = [p[0] for p in safe], [p[1] for p in safe]
        box = (min(xs), max(xs), min(ys), max(ys))
        if len(safe) != (box[1] - box[0] + 1) * (box[3] - box[2] + 1):
            return None
    listed = [(x, y) for x in range(width) for y in range(height)
              if box == "empty" or not (box[0] <= x <= box[1] and box[2] <= y <= box[3])]
    return box if listed == list(hazards) else None


def royale_hazard_problems(hazards: Sequence[Point], width: int, height: int, turn: int, every: int,
                           previous: Sequence[Point] | None = None, previous_turn: int | None = None) -> list[str]:
    """Legality of hazards rebuilt for ``turn``: the board minus a box shrunk by one side per ``every`` turns."""
    shrinks = turn // every if turn >= every else 0
    if shrinks == 0:
        return [] if not hazards else [f"no royale hazards before turn {every}, got {len(hazards)} at turn {turn}"]
    box = royale_box(hazards, width, height)
    if box is None:
        return [f"royale hazards at turn {turn} are not the board minus a box, listed x-major then y"]
    if box == "empty":
        if shrinks < min(width, height):
            return [f"whole board hazardous after only {shrinks} shrinks"]
        return []
    lost = box[0] + (width - 1 - box[1]) + box[2] + (height - 1 - box[3])
    if lost != shrinks:
        return [f"royale box {box} lost {lost} sides, expected {shrinks} (turn {turn} // {every})"]
    if previous is not None and previous_turn is not None and previous_turn >= every:
        before = royale_box(previous, width, height)
        if isinstance(before, tuple) and not (before[0] <= box[0] and box[1] <= before[1]
                                              and before[2] <= box[2] and box[3] <= before[3]):
            return [f"royale box {box} is not inside the previous box {before}"]
    return []


def _fixed_cells(width: int) -> tuple[set[Point], set[Point]]:
    mn, md, mx = 1, (width - 1) // 2, width - 2
    return {(mn, mn), (mn, mx), (mx, mn), (mx, mx)}, {(mn, md), (md, mn), (md, mx), (mx, md)}


def start_board_problems(board: Mapping, settings: GameSettings) -> list[str]:
    """Is ``board`` a start the official engine can produce for these settings (cells, stacking, food pattern)?"""
    width, height = settings.width, settings.height
    snakes = board["snakes"]
    n = len(snakes)
    problems: list[str] = []
    heads: list[Point] = []
    for i, snake in enumerate(snakes):
        body = _pts(snake["body"])
        if snake["health"] != 100 or len(body) != 3 or len(set(body)) != 1 or snake.get("eliminated"):
            problems.append(f"snake {i} must start live with health 100 and 3 stacked segments: {snake}")
            return problems
        heads.append(body[0])
    if len(set(heads)) != n:
        problems.append(f"two snakes share a start cell: {heads}")
    square = width == height
    centre = ((width - 1) // 2, (height - 1) // 2)
    if square and width >= 7 and n <= 8:
        corners, cardinals = _fixed_cells(width)
        first = corners if heads[0] in corners else cardinals
        second = cardinals if first is corners else corners
        for i, h in enumerate(heads):
            if h not in (first if i < 4 else second):
                problems.append(f"snake {i} at {h}: fixed starts fill one group (corners or edge-middles) first")
    elif square and width >= 11:
        qw, qh = width // 2, height // 2
        ho, vo = qw // 3, qh // 3
        base = [(ho, vo), (qw - ho, vo), (ho, qh - vo), (qw - ho, qh - vo)]
        quads = [set(base), {(width - x - 1, y) for x, y in base}, {(x, height - y - 1) for x, y in base},
                 {(width - x - 1, height - y - 1) for x, y in base}]
        if not any(all(h in quads[(q + i) % 4] for i, h in enumerate(heads)) for q in range(4)):
            problems.append(f"starts {heads} are not distributed over the quadrants in rotation")
    else:
        for i, h in enumerate(heads):
            if (h[0] + h[1]) % 2 or h == centre or not (0 <= h[0] < width and 0 <= h[1] < height):
                problems.append(f"snake {i} at {h}: random starts are on even cells, never the centre")
    food = _pts(board["food"])
    if board.get("hazards"):
        problems.append(f"a start has no hazards, got {board['hazards']}")
    if settings.rules.no_food or not settings.game_map.setup_food:
        if food:
            problems.append(f"no starting food in {settings.ruleset} on map {settings.map}, got {food}")
        return problems
    if len(set(food)) != len(food):
        problems.append(f"starting food repeats a cell: {food}")
    if square and width >= 7:
        expected = n + 1 if (n <= 4 or width * height >= 121) else 1
        if len(food) != expected or food[-1] != centre:
            problems.append(f"expected {expected} food ending with the centre {centre}, got {food}")
            return problems
        for i, (f, h) in enumerate(zip(food[:-1], heads)):
            cx, cy = centre
            away = (f[0] < h[0] < cx) or (cx < h[0] < f[0]) or (f[1] < h[1] < cy) or (cy < h[1] < f[1])
            corner = f[0] in (0, width - 1) and f[1] in (0, height - 1)
            if abs(f[0] - h[0]) != 1 or abs(f[1] - h[1]) != 1 or not away or corner or f == centre:
                problems.append(f"food {i} at {f} is not a legal diagonal of snake {i}'s head {h}")
    else:
        near = set(heads) | {(x + dx, y + dy) for x, y in heads for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))}
        if len(food) > n:
            problems.append(f"at most one random food per snake, got {len(food)}")
        for f in food:
            if f in near or not (0 <= f[0] < width and 0 <= f[1] < height):
                problems.append(f"random food {f} is on or next to a snake's head")
    return problems


# ---------------------------------------------------------------- step cases


def settings_of(case: Mapping, width: int, height: int) -> GameSettings:
    return GameSettings.from_api(case.get("settings", {}), width=width, height=height, ruleset=case["ruleset"],
                                 map=case["map"])


def _board_diff(expected: Mapping, got: Mapping) -> list[str]:
    lines = []
    for key in ("width", "height", "food", "hazards"):
        if expected.get(key) != got.get(key):
            lines.append(f"  {key}: expected {_short(expected.get(key))}, got {_short(got.get(key))}")
    e_snakes, g_snakes = expected["snakes"], got["snakes"]
    if [s["id"] for s in e_snakes] != [s["id"] for s in g_snakes]:
        lines.append("  snake order differs")
    for e, g in zip(e_snakes, g_snakes):
        for key in ("health", "body", "eliminated"):
            if e.get(key) != g.get(key):
                lines.append(f"  snake {e['id']} {key}: expected {_short(e.get(key))}, got {_short(g.get(key))}")
    return lines


def _short(value) -> str:
    if isinstance(value, list) and value and isinstance(value[0], Mapping) and "x" in value[0]:
        return "[" + " ".join(f"({p['x']},{p['y']})" for p in value) + "]"
    return json.dumps(value)


def check_step_case(case: Mapping) -> list[str]:
    before, after = case["before"], case["after"]
    settings = settings_of(case, before["width"], before["height"])
    state, ids = board_from_json(before, turn=case["turn"], wrapped=settings.rules.wrapped)
    games = Games.from_state(settings, state)
    over = games.step_named(case["moves"], ids, post_update=False)
    got = board_to_json(games.state, settings.width, settings.height, ids)
    problems = []
    royale_pipeline = settings.ruleset == "royale" and not over
    expected_cmp, got_cmp = dict(after), dict(got)
    if royale_pipeline:
        turn = case["turn"] + 1
        problems += [f"after.hazards: {p}" for p in royale_hazard_problems(
            _pts(after["hazards"]), settings.width, settings.height, turn, settings.shrink_every_n_turns,
            _pts(before["hazards"]), case["turn"])]
        expected_cmp.pop("hazards")
        got_cmp.pop("hazards")
    if expected_cmp != got_cmp:
        problems.append("after differs:\n" + "\n".join(_board_diff(expected_cmp, got_cmp)) + "\n"
                        + side_by_side(render_text(after), render_text(got)))
    if over != case["game_over"]:
        problems.append(f"game_over: expected {case['game_over']}, got {over}")
    if problems:
        return problems
    spawned = case.get("spawned")
    if spawned is not None:
        problems += [f"spawned.food: {p}" for p in food_spawn_problems(after, spawned["food"], settings)]
        games.finish_turn()
        if settings.map == "royale":
            problems += [f"spawned.hazards: {p}" for p in royale_hazard_problems(
                _pts(spawned["hazards"]), settings.width, settings.height, case["turn"] + 1,
                settings.shrink_every_n_turns, _pts(after["hazards"]), case["turn"])]
        else:
            ours = board_to_json(games.state, settings.width, settings.height, ids)["hazards"]
            if ours != spawned["hazards"]:
                problems.append(f"spawned.hazards: expected {_short(spawned['hazards'])}, got {_short(ours)}")
    return problems


def check_setup_case(case: Mapping, seeds: int = 8) -> list[str]:
    settings = GameSettings(width=case["width"], height=case["height"], ruleset=case["ruleset"], map=case["map"])
    problems = [f"recorded start: {p}" for p in start_board_problems(case["board"], settings)]
    games = Games(settings, num_snakes=len(case["snake_ids"]), batch_size=seeds, seed=0)
    for b in range(seeds):
        board = board_to_json(games.state, settings.width, settings.height, case["snake_ids"], game=b)
        problems += [f"generated start (game {b}): {p}" for p in start_board_problems(board, settings)]
    return problems


# ---------------------------------------------------------------- CLI exports and request logs


def _frames(lines: list[Mapping]) -> tuple[Mapping, list[Mapping]]:
    """(game object, /move-style frames by turn) from a CLI export or a server's request log.

    A server's log holds only the turns its snake was alive for, then ``/end``: the ``/end`` frame is dropped
    when it does not follow the last ``/move`` directly.
    """
    if lines and "path" in lines[0] and "body" in lines[0]:
        frames: dict[int, Mapping] = {}
        for entry in lines:
            if entry.get("path") in ("/start", "/move"):
                frames.setdefault(entry["body"]["turn"], entry["body"])
        end = [e["body"] for e in lines if e.get("path") == "/end"]
        if end and (not frames or end[0]["turn"] == max(frames) + 1):
            frames.setdefault(end[0]["turn"], end[0])
        first = lines[0]["body"]
        return first["game"], [frames[t] for t in sorted(frames)]
    frames = [entry for entry in lines[1:] if "board" in entry]
    return lines[0], frames


def _dir(a: Point, b: Point, width: int, height: int) -> str | None:
    dx, dy = (b[0] - a[0]) % width, (b[1] - a[1]) % height
    return {(1, 0): "right", (width - 1, 0): "left", (0, 1): "up", (0, height - 1): "down"}.get((dx, dy))


def check_replay(lines: list[Mapping]) -> Iterator[tuple[str, list[str]]]:
    """For each pair of consecutive turns: do the rules lead from one to the next for some moves of the snakes
    that died (the survivors' moves are read off their heads)?"""
    game, frames = _frames(lines)
    ruleset = game["ruleset"]
    for prev, nxt in zip(frames, frames[1:]):
        case_id = f"turn {prev['turn']} -> {nxt['turn']}"
        if nxt["turn"] != prev["turn"] + 1:
            yield case_id, [f"turns are not consecutive: {prev['turn']} then {nxt['turn']}"]
            continue
        board, nboard = prev["board"], nxt["board"]
        settings = GameSettings.from_api(ruleset.get("settings", {}), width=board["width"], height=board["height"],
                                         ruleset=ruleset["name"], map=game.get("map") or "standard")
        state, ids = board_from_json(board, turn=prev["turn"], wrapped=settings.rules.wrapped)
        survivors = {s["id"]: s for s in nboard["snakes"]}
        moves, unknown = {}, []
        for snake in board["snakes"]:
            if snake["id"] in survivors:
                move = _dir((snake["head"]["x"], snake["head"]["y"]),
                            (survivors[snake["id"]]["head"]["x"], survivors[snake["id"]]["head"]["y"]),
                            settings.width, settings.height)
                if move is None:
                    yield case_id, [f"snake {snake['id']} jumped from {snake['head']} to "
                                    f"{survivors[snake['id']]['head']}"]
                    break
                moves[snake["id"]] = move
            else:
                unknown.append(snake["id"])
        else:
            problems = ["no moves of the eliminated snakes reproduce the next turn"]
            for combo in itertools.product(MOVE_NAMES, repeat=len(unknown)):
                attempt = _replay_step(settings, state, ids, {**moves, **dict(zip(unknown, combo))}, nboard)
                if not attempt:
                    problems = []
                    break
                if len(problems) == 1:
                    problems += attempt
            yield case_id, problems


def _replay_step(settings: GameSettings, state, ids: list[str], moves: Mapping[str, str],
                 nboard: Mapping) -> list[str]:
    games = Games.from_state(settings, type(state)(*(a.copy() for a in state)))
    games.step_named(moves, ids, post_update=False)
    after = board_to_json(games.state, settings.width, settings.height, ids)
    live = [{"id": s["id"], "health": s["health"], "body": s["body"]} for s in _live(after)]
    want = [{"id": s["id"], "health": s["health"], "body": s["body"]} for s in nboard["snakes"]]
    if live != want:
        return ["snakes differ:\n" + "\n".join(_board_diff({"snakes": want}, {"snakes": live}))]
    problems = [f"food: {p}" for p in food_spawn_problems(after, nboard["food"], settings)]
    if settings.map == "royale" or settings.ruleset == "royale":
        problems += [f"hazards: {p}" for p in royale_hazard_problems(
            _pts(nboard["hazards"]), settings.width, settings.height, int(state.turn[0]) + 1,
            settings.shrink_every_n_turns)]
    else:
        games.finish_turn()
        ours = board_to_json(games.state, settings.width, settings.height, ids)["hazards"]
        if ours != nboard["hazards"]:
            problems.append(f"hazards: expected {_short(nboard['hazards'])}, got {_short(ours)}")
    return problems


# ---------------------------------------------------------------- runner


@dataclass
class Report:
    passed: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)


def _files(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.jsonl"))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return files


def _read_jsonl(path: Path) -> list[Mapping]:
    lines = []
    for n, text in enumerate(path.read_text().splitlines(), 1):
        if text.strip():
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError as exc:
                raise BoardError(f"{path}:{n}: not JSON: {exc}") from None
    return lines


def run(paths: Sequence[str | Path], out: TextIO = sys.stdout, max_shown: int = 20) -> Report:
    """Check every trace / export file under ``paths``; print failures and the closing ``N passed, N failed``."""
    report = Report()

    def record(label: str, problems: list[str]) -> None:
        if problems:
            report.failed += 1
            if report.failed <= max_shown:
                print(f"FAIL {label}\n" + "\n".join("  " + p.replace("\n", "\n  ") for p in problems), file=out)
        else:
            report.passed += 1

    for path in _files(paths):
        lines = _read_jsonl(path)
        if not lines:
            continue
        if "kind" in lines[0]:
            for case in lines:
                label = f"{path.name} {case.get('case', '?')}"
                try:
                    if case["kind"] == "step":
                        record(label, check_step_case(case))
                    elif case["kind"] == "setup":
                        record(label, check_setup_case(case))
                    else:
                        record(label, [f"unknown case kind {case['kind']!r}"])
                except (RulesError, KeyError, TypeError) as exc:
                    record(label, [f"error: {type(exc).__name__}: {exc}"])
        else:
            try:
                for case_id, problems in check_replay(lines):
                    record(f"{path.name} {case_id}", problems)
            except (RulesError, KeyError, TypeError) as exc:
                record(f"{path.name}", [f"error: {type(exc).__name__}: {exc}"])
    if report.failed > max_shown:
        print(f"... {report.failed - max_shown} more failures not shown", file=out)
    print(f"{report.passed} passed, {report.failed} failed", file=out)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="battlesnake-rl conformance", description=__doc__)
    parser.add_argument("paths", nargs="+", help="trace files, CLI exports, or folders of them (*.jsonl)")
    parser.add_argument("--max-shown", type=int, default=20, help="failures printed in full")
    args = parser.parse_args(argv)
    try:
        report = run(args.paths, max_shown=args.max_shown)
    except (FileNotFoundError, BoardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
