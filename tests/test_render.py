"""Pictures of boards: RGB frames read pixel by pixel, GIFs and HTML replays, and the replay command on real exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ascii_boards import board
from PIL import Image

from battlesnake_gym import replay
from battlesnake_gym.demo import play
from battlesnake_gym.engine import GameSettings
from battlesnake_gym.render import (
    EMPTY_COLOUR,
    FOOD_COLOUR,
    GRID_COLOUR,
    SNAKE_COLOURS,
    hazard_shade,
    head_colour,
    render_rgb,
    save_gif,
    save_html,
    snake_colours,
)

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "api-samples"
DUEL = SAMPLES / "cli-export-standard-duel.jsonl"
CELL = 10

TINY = board("""
    * ~  2  .
    . A  a  .
    . B  b  b
""")


def pixel(image: np.ndarray, x: int, y: int, height: int = 3, cell: int = CELL) -> tuple[int, ...]:
    """The centre pixel of board cell (x, y) ((0, 0) bottom-left)."""
    return tuple(int(v) for v in image[(height - 1 - y) * cell + cell // 2, x * cell + cell // 2])


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def needs_samples() -> None:
    if not DUEL.is_file():
        pytest.skip(f"no official CLI exports at {SAMPLES}")


# ---------------------------------------------------------------- RGB frames

def test_a_frame_is_height_by_width_cells_of_rgb_bytes() -> None:
    image = render_rgb(TINY, cell=CELL)
    assert image.shape == (3 * CELL, 4 * CELL, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == GRID_COLOUR  # the grid line at the top-left corner


def test_food_is_a_disc_of_the_food_colour_in_its_cell_with_the_bottom_row_at_y_0() -> None:
    image = render_rgb(TINY, cell=CELL)
    assert pixel(image, 0, 2) == FOOD_COLOUR
    assert pixel(image, 0, 0) == EMPTY_COLOUR
    top_left_corner = image[1, 1]  # inside the food cell's grid line but outside the disc
    assert tuple(top_left_corner) == EMPTY_COLOUR


def test_heads_are_a_darker_shade_of_their_snakes_colour_and_each_snake_has_its_own() -> None:
    image = render_rgb(TINY, cell=CELL)
    a, b = SNAKE_COLOURS[0], SNAKE_COLOURS[1]
    assert pixel(image, 1, 1) == head_colour(a)
    assert pixel(image, 2, 1) == a
    assert pixel(image, 1, 0) == head_colour(b)
    assert pixel(image, 3, 0) == b
    assert a != b and head_colour(a) != a and sum(head_colour(a)) < sum(a)


def test_hazards_shade_a_cell_and_stacked_hazards_shade_it_darker() -> None:
    image = render_rgb(TINY, cell=CELL)
    one, two = pixel(image, 1, 2), pixel(image, 2, 2)
    assert one == hazard_shade(1) and two == hazard_shade(2)
    assert sum(two) < sum(one) < sum(EMPTY_COLOUR)


def test_eliminated_snakes_are_not_drawn_and_colours_can_be_given_per_snake_id() -> None:
    dead = board("""
        . . .
        A a .
        B b b
    """, eliminated={"a": {"cause": "head-collision", "by": "b", "turn": 3}})
    image = render_rgb(dead, cell=CELL, colours={"b": (1, 2, 3)})
    assert pixel(image, 0, 1) == EMPTY_COLOUR and pixel(image, 1, 1) == EMPTY_COLOUR
    assert pixel(image, 2, 0) == (1, 2, 3)


def test_a_snake_keeps_its_colour_when_the_api_board_lists_it_at_another_index() -> None:
    before = {"width": 3, "height": 3, "food": [], "hazards": [], "snakes": [
        {"id": "x", "health": 9, "body": [{"x": 0, "y": 0}]}, {"id": "y", "health": 9, "body": [{"x": 2, "y": 2}]}]}
    after = {**before, "snakes": before["snakes"][1:]}  # x is gone: y is now listed first
    colours = snake_colours([before, after])
    assert colours == {"x": SNAKE_COLOURS[0], "y": SNAKE_COLOURS[1]}
    assert pixel(render_rgb(after, CELL, colours), 2, 2) == head_colour(SNAKE_COLOURS[1])


def test_a_cell_smaller_than_two_pixels_is_refused() -> None:
    with pytest.raises(ValueError, match="cell must be >= 2"):
        render_rgb(TINY, cell=1)


# ---------------------------------------------------------------- GIF and HTML

def test_a_gif_has_one_frame_per_board_in_the_exact_colours(tmp_path: Path) -> None:
    moved = board("""
        * ~ 2 .
        . a A .
        . B b b
    """, stacked={"a": 2})
    path = save_gif([TINY, moved, TINY], tmp_path / "game.gif", fps=4, cell=CELL)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
        assert gif.info["duration"] == 250
        first = np.asarray(gif.convert("RGB"))
        gif.seek(1)
        second = np.asarray(gif.convert("RGB"))
    assert pixel(first, 0, 2) == FOOD_COLOUR and pixel(first, 1, 1) == head_colour(SNAKE_COLOURS[0])
    assert pixel(second, 2, 1) == head_colour(SNAKE_COLOURS[0])


def _html_data(page: str) -> dict:
    match = re.search(r'<script id="replay-data" type="application/json">(.*?)</script>', page, re.S)
    assert match, "no inline frame data"
    return json.loads(match.group(1))


def test_the_html_replay_holds_every_frame_inline_and_loads_nothing_from_the_network(tmp_path: Path) -> None:
    boards = [TINY, TINY, TINY]
    path = save_html(boards, tmp_path / "game.html", turns=[5, 6, 7], result="winner: a")
    page = path.read_text()
    data = _html_data(page)
    assert [f["turn"] for f in data["frames"]] == [5, 6, 7]
    assert data["frames"][0]["food"] == [[0, 2]]
    assert sorted(data["frames"][0]["hazards"]) == [[1, 2, 1], [2, 2, 2]]
    assert [s["body"][0] for s in data["frames"][0]["snakes"]] == [[1, 1], [1, 0]]
    assert data["result"] == "winner: a"
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"\b(src|href)\s*=", page), "an external resource"


def test_a_snake_name_cannot_break_out_of_the_html_page(tmp_path: Path) -> None:
    hostile = json.loads(json.dumps(TINY))
    hostile["snakes"][0]["name"] = "</script><script>alert(1)</script>"
    page = save_html([hostile], tmp_path / "game.html", title="<b>title</b>").read_text()
    assert "</script><script>alert" not in page and "<b>title</b>" not in page
    assert _html_data(page)["frames"][0]["snakes"][0]["name"] == hostile["snakes"][0]["name"]


# A stand-in for the browser: enough DOM for the page's script to run, step to the end and report what it showed.
_NODE_DRIVER = r"""
const fs = require("fs");
const html = fs.readFileSync(process.argv[1], "utf8");
const data = html.match(/<script id="replay-data" type="application\/json">([\s\S]*?)<\/script>/)[1];
const code = html.match(/<script>\n([\s\S]*?)<\/script>/)[1];
let fills = 0, discs = 0;
const ctx = { fillRect() { fills++; }, beginPath() {}, arc() { discs++; }, fill() {}, set fillStyle(v) {} };
const elements = {};
function element(id) {
  if (!elements[id]) elements[id] = {
    id, style: {}, options: [], children: [], textContent: id === "replay-data" ? data : "", getContext: () => ctx,
    appendChild(c) { this.children.push(c); if (this.id === "speed") this.options.push(c); },
    replaceChildren() { this.children = []; },
  };
  return elements[id];
}
let created = 0;
global.document = { getElementById: element, createElement: () => element("new" + created++), addEventListener() {} };
global.setInterval = () => 1;
global.clearInterval = () => {};
eval(code);
const frames = JSON.parse(data).frames.length;
for (let i = 0; i < frames + 2; i++) elements["next"].onclick();
console.log(JSON.stringify({ turn: elements["turn"].textContent, result: elements["result"].textContent,
                             snakes: elements["snakes"].children.length, fills, discs }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_html_replays_script_runs_to_the_last_turn(tmp_path: Path) -> None:
    path = save_html([TINY, TINY], tmp_path / "game.html", turns=[0, 1], result="draw")
    run = subprocess.run(["node", "-e", _NODE_DRIVER, str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["turn"].startswith("turn 1 ") and shown["result"] == "draw" and shown["snakes"] == 2
    assert shown["discs"] >= 2 and shown["fills"] > 2 * 12


# ---------------------------------------------------------------- the replay command

def test_replaying_the_official_duel_writes_a_gif_with_a_frame_per_turn_and_an_html_page(tmp_path: Path,
                                                                                         capsys) -> None:
    needs_samples()
    turns = len(lines(DUEL)) - 2  # the game object and the result line
    gif, page = tmp_path / "out" / "duel.gif", tmp_path / "duel.html"
    assert replay.main([str(DUEL), "--gif", str(gif), "--html", str(page)]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == turns
    data = _html_data(page.read_text())
    assert [f["turn"] for f in data["frames"]] == list(range(turns))
    assert data["result"] == "winner: alpha"
    assert f"{turns} turns" in capsys.readouterr().out


def test_every_official_export_replays(tmp_path: Path) -> None:
    needs_samples()
    for path in sorted(SAMPLES.glob("cli-export-*.jsonl")):
        record = replay.read_export(path)
        assert len(record.boards) == len(lines(path)) - 2, path.name
        save_gif(record.boards, tmp_path / f"{path.stem}.gif", cell=4)


def test_the_replay_command_prints_every_turn_as_text_by_default(capsys) -> None:
    needs_samples()
    assert replay.main([str(DUEL)]) == 0
    out = capsys.readouterr().out
    assert out.count("turn ") == len(lines(DUEL)) - 2
    assert out.rstrip().endswith("winner: alpha")


def test_our_own_demo_export_replays(tmp_path: Path) -> None:
    export = tmp_path / "demo.jsonl"
    summary = play(GameSettings(), 2, "flood", seed=1, out=None, export=export)
    record = replay.read_export(export)
    assert record.turns == list(range(len(record.turns)))
    assert record.outcome() == (f"winner: {summary['winner']}" if summary["winner"] else "no winner")
    with Image.open(save_gif(record.boards, tmp_path / "demo.gif", cell=6)) as gif:
        assert gif.n_frames == len(record.boards)


def test_the_replay_command_is_on_the_battlesnake_rl_command_line(tmp_path: Path) -> None:
    needs_samples()
    gif = tmp_path / "duel.gif"
    run = subprocess.run([sys.executable, "-m", "battlesnake_rl.cli", "replay", str(DUEL), "--gif", str(gif)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    with Image.open(gif) as image:
        assert image.n_frames == len(lines(DUEL)) - 2


GAME = {"id": "g", "ruleset": {"name": "standard", "version": "v", "settings": {}}, "map": "standard"}
FRAME = {"game": GAME, "turn": 0, "board": TINY}


@pytest.mark.parametrize(("content", "problem"), [
    ("", "the file is empty, not a game export"),
    ("# a game\n", ":1: not JSON"),
    (json.dumps({"kind": "step", "case": "c", "ruleset": "standard"}), ":1: a conformance trace"),
    (json.dumps(FRAME), ":1: not a game export: the first line should be the game object"),
    (json.dumps(GAME), "not a game export: no turns"),
    (json.dumps(GAME) + "\n" + json.dumps({"hello": 1}), ":2: neither a /move request"),
    (json.dumps(GAME) + "\n" + json.dumps({**FRAME, "board": {**TINY, "width": "eleven"}}),
     ":2: bad board: board.width must be an integer"),
    (json.dumps(GAME) + "\n" + json.dumps(FRAME) + "\n" + json.dumps(FRAME), ":3: turn 0 does not follow turn 0"),
    (json.dumps(GAME) + "\n" + json.dumps(FRAME) + "\n" + json.dumps({"winnerId": ""}) + "\n" + json.dumps(FRAME),
     ":4: a line after the closing result line"),
])
def test_a_file_that_is_not_a_game_export_is_refused_naming_the_file_and_the_problem(
        tmp_path: Path, capsys, content: str, problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    gif = tmp_path / "bad.gif"
    assert replay.main([str(path), "--gif", str(gif)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and problem in err, err
    assert not gif.exists()


def test_a_missing_file_is_refused_naming_it(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nowhere.jsonl"
    assert replay.main([str(missing)]) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err


def test_a_bad_frame_rate_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        replay.main(["game.jsonl", "--fps", "0"])
    assert exit_info.value.code == 2
