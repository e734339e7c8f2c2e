"""Pictures of boards (JSON board dicts, trace or API format): text, RGB frames, animated GIFs and self-contained
HTML replays. (0, 0) is drawn bottom-left.

- ``render_text(board)``: a text picture; ``side_by_side(left, right)`` puts two of them next to each other.
- ``render_rgb(board, cell=20)``: an (height*cell, width*cell, 3) uint8 RGB frame.
- ``save_gif(boards, path, fps=6)``: an animated GIF, one frame per board (needs Pillow).
- ``save_html(boards, path)``: one HTML file that replays the game in a browser, with no network resources.
"""

from __future__ import annotations

import html
import json
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

_HEADS = string.ascii_uppercase
_BODIES = string.ascii_lowercase


def render_text(board: Mapping, *, legend: bool = True) -> str:
    """A picture of the board: ``A`` head and ``a`` body of the first snake, ``*`` food, ``~`` hazard.

    Eliminated snakes are not drawn; stacked hazards show their count (2-9) where nothing else is.
    """
    width, height = board["width"], board["height"]
    grid = [["." for _ in range(width)] for _ in range(height)]
    stacked: dict[tuple[int, int], int] = {}
    for p in board.get("hazards", ()):
        stacked[(p["x"], p["y"])] = stacked.get((p["x"], p["y"]), 0) + 1
    for (x, y), n in stacked.items():
        if 0 <= x < width and 0 <= y < height:
            grid[y][x] = "~" if n == 1 else str(min(n, 9))
    for p in board.get("food", ()):
        grid[p["y"]][p["x"]] = "*"
    lines = []
    for i, snake in enumerate(board["snakes"]):
        eliminated = snake.get("eliminated")
        if not eliminated:
            for j, p in reversed(list(enumerate(snake["body"]))):
                if 0 <= p["x"] < width and 0 <= p["y"] < height:
                    grid[p["y"]][p["x"]] = (_HEADS if j == 0 else _BODIES)[i % 26]
        if legend:
            status = (f" eliminated: {eliminated['cause']} by {eliminated['by'] or '-'} on turn {eliminated['turn']}"
                      if eliminated else "")
            lines.append(f"{_HEADS[i % 26]} {snake['id']}: health {snake['health']}, "
                         f"length {len(snake['body'])}{status}")
    rows = ["".join(row) for row in reversed(grid)]
    return "\n".join(rows + lines)


def side_by_side(left: str, right: str, titles: tuple[str, str] = ("expected", "got"), gap: int = 4) -> str:
    a, b = left.splitlines(), right.splitlines()
    width = max([len(line) for line in a] + [len(titles[0])])
    out = [titles[0].ljust(width + gap) + titles[1]]
    for i in range(max(len(a), len(b))):
        out.append((a[i] if i < len(a) else "").ljust(width + gap) + (b[i] if i < len(b) else ""))
    return "\n".join(out)


# ---------------------------------------------------------------- pictures: RGB frames, GIFs, HTML replays

Colour = tuple[int, int, int]

#: Grid lines between cells, and an empty cell.
GRID_COLOUR: Colour = (206, 209, 217)
EMPTY_COLOUR: Colour = (244, 245, 248)
FOOD_COLOUR: Colour = (232, 55, 85)
#: Hazard cells are EMPTY_COLOUR blended toward HAZARD_COLOUR: 1 - HAZARD_KEEP**n of the way for n stacked entries,
#: at most HAZARD_MAX_SHADE of the way (so stacked hazards are darker).
HAZARD_COLOUR: Colour = (70, 45, 95)
HAZARD_KEEP = 0.7
HAZARD_MAX_SHADE = 0.85
#: Snakes take these in turn (see ``snake_colours``); a head is its snake's colour times HEAD_SHADE, with eyes.
SNAKE_COLOURS: tuple[Colour, ...] = (
    (40, 110, 240), (30, 160, 70), (245, 140, 20), (150, 70, 215), (0, 165, 170), (215, 50, 150),
    (130, 95, 45), (95, 105, 120), (185, 170, 0), (240, 80, 40), (100, 200, 240), (60, 60, 160),
)
HEAD_SHADE = 0.6
EYE_COLOUR: Colour = (255, 255, 255)


def hazard_shade(stacked: int) -> Colour:
    """The colour of an empty cell under ``stacked`` hazard entries (EMPTY_COLOUR for none)."""
    alpha = min(HAZARD_MAX_SHADE, 1.0 - HAZARD_KEEP**stacked) if stacked > 0 else 0.0
    r, g, b = (round(e + (h - e) * alpha) for e, h in zip(EMPTY_COLOUR, HAZARD_COLOUR))
    return r, g, b


def head_colour(colour: Colour) -> Colour:
    """The colour of a head of a snake drawn in ``colour``."""
    r, g, b = (round(c * HEAD_SHADE) for c in colour)
    return r, g, b


def snake_colours(boards: Iterable[Mapping]) -> dict[str, Colour]:
    """A colour for every snake id in ``boards``, in order of first appearance, so that a snake keeps its colour
    through a replay even when the API boards (live snakes only) list it at another index."""
    colours: dict[str, Colour] = {}
    for board in boards:
        for snake in board["snakes"]:
            if snake["id"] not in colours:
                colours[snake["id"]] = SNAKE_COLOURS[len(colours) % len(SNAKE_COLOURS)]
    return colours


def _is_live(snake: Mapping) -> bool:
    return not snake.get("eliminated")


def render_rgb(board: Mapping, cell: int = 20, colours: Mapping[str, Colour] | None = None) -> np.ndarray:
    """A picture of a JSON board (trace or API format) as an (height*cell, width*cell, 3) uint8 RGB array.

    (0, 0) is drawn bottom-left: board cell (x, y) covers rows ``(height-1-y)*cell`` to ``(height-y)*cell`` and
    columns ``x*cell`` to ``(x+1)*cell``. Each cell's centre pixel shows what lies there: FOOD_COLOUR for food
    (a disc), the snake's colour for a body segment, ``head_colour`` of it for a head (white eyes look the way it
    last moved), ``hazard_shade(n)`` for an empty cell under n hazard entries, EMPTY_COLOUR otherwise; a 1-pixel grid
    (cells of 6 pixels or more) separates cells. Segments of one snake are joined; eliminated snakes are not drawn.
    ``colours`` maps snake ids to colours (default: ``SNAKE_COLOURS`` in board order).
    """
    if cell < 2:
        raise ValueError(f"cell must be >= 2 pixels, got {cell}")
    width, height = int(board["width"]), int(board["height"])
    image = np.empty((height * cell, width * cell, 3), np.uint8)
    image[:] = GRID_COLOUR if cell >= 6 else EMPTY_COLOUR
    line = 1 if cell >= 6 else 0

    def box(x: int, y: int, colour: Colour, x0: int = 0, y0: int = 0, x1: int | None = None,
            y1: int | None = None) -> None:
        """Fill the part [x0, x1) x [y0, y1) (pixels from the cell's top-left) of cell (x, y)."""
        if 0 <= x < width and 0 <= y < height:
            top, left = (height - 1 - y) * cell, x * cell
            image[top + y0: top + (cell if y1 is None else y1), left + x0: left + (cell if x1 is None else x1)] = colour

    stacked = Counter((p["x"], p["y"]) for p in board.get("hazards", ()))
    for y in range(height):
        for x in range(width):
            box(x, y, hazard_shade(stacked.get((x, y), 0)), line, line)

    yy, xx = np.mgrid[0:cell, 0:cell]
    centre = (cell - 1) / 2
    disc = (xx - centre) ** 2 + (yy - centre) ** 2 <= (cell * 0.32) ** 2
    for p in board.get("food", ()):
        x, y = p["x"], p["y"]
        if 0 <= x < width and 0 <= y < height:
            top, left = (height - 1 - y) * cell, x * cell
            image[top: top + cell, left: left + cell][disc] = FOOD_COLOUR

    margin = max(1, cell // 8)

    def join(x: int, y: int, dx: int, dy: int, colour: Colour) -> None:
        """Fill the margin strip of cell (x, y) on its side toward (x + dx, y + dy)."""
        if dx == 1:
            box(x, y, colour, cell - margin, margin, cell, cell - margin)
        elif dx == -1:
            box(x, y, colour, 0, margin, margin, cell - margin)
        elif dy == 1:
            box(x, y, colour, margin, 0, cell - margin, margin)
        else:
            box(x, y, colour, margin, cell - margin, cell - margin, cell)

    for i, snake in enumerate(board["snakes"]):
        if not _is_live(snake):
            continue
        colour = (colours or {}).get(snake["id"]) or SNAKE_COLOURS[i % len(SNAKE_COLOURS)]
        body = [(p["x"], p["y"]) for p in snake["body"]]
        for j in range(len(body) - 1, -1, -1):
            x, y = body[j]
            box(x, y, head_colour(colour) if j == 0 else colour, margin, margin, cell - margin, cell - margin)
            if j + 1 < len(body):  # join to the next segment toward the tail when it is drawn beside this one
                nx, ny = body[j + 1]
                dx, dy = nx - x, ny - y
                if abs(dx) + abs(dy) == 1:
                    join(x, y, dx, dy, colour)
                    join(nx, ny, -dx, -dy, colour)
        if body and cell >= 8:
            _draw_eyes(box, body, width, height, cell)
    return image


def _draw_eyes(box: Callable, body: list[tuple[int, int]], width: int, height: int, cell: int) -> None:
    """Two eyes on the head, looking the way the snake last moved (up while its neck is stacked)."""
    (hx, hy) = body[0]
    dx, dy = 0, 1
    for nx, ny in body[1:]:
        if (nx, ny) != (hx, hy):
            dx, dy = hx - nx, hy - ny
            if abs(dx) > 1:  # moved across a wrapped edge
                dx = -dx // abs(dx)
            if abs(dy) > 1:
                dy = -dy // abs(dy)
            break
    size = max(1, cell // 7)
    centre = cell // 2
    ahead, aside = round(cell * 0.12), round(cell * 0.22)
    for side in (-1, 1):
        # board directions to pixel offsets: x right, y up (pixel rows grow downward)
        px = centre + dx * ahead + (-dy) * side * aside
        py = centre - dy * ahead - dx * side * aside
        box(hx, hy, EYE_COLOUR, px - size // 2, py - size // 2, px - size // 2 + size, py - size // 2 + size)


def save_gif(boards: Sequence[Mapping], path: str | Path, fps: float = 6.0, cell: int = 20) -> Path:
    """Write the boards as an animated GIF (one frame per board, looping) and return the path.

    Snakes keep one colour throughout (``snake_colours``). GIF players show frames for whole hundredths of a second,
    and a board identical to the one before it lengthens that frame instead of adding one.
    """
    from PIL import Image

    if not boards:
        raise ValueError("no boards to draw")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    colours = snake_colours(boards)
    frames = [Image.fromarray(render_rgb(board, cell, colours)) for board in boards]
    path = Path(path)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=max(20, round(1000 / fps)),
                   loop=0)
    return path


def _compact(board: Mapping, turn: int | None) -> dict:
    """A board as the HTML replay reads it: points as [x, y], hazards as [x, y, stacked], live snakes only."""
    stacked = Counter((p["x"], p["y"]) for p in board.get("hazards", ()))
    return {
        "turn": turn,
        "food": [[p["x"], p["y"]] for p in board.get("food", ())],
        "hazards": [[x, y, n] for (x, y), n in stacked.items()],
        "snakes": [{"id": s["id"], "name": s.get("name", s["id"]), "health": s["health"],
                    "body": [[p["x"], p["y"]] for p in s["body"]]} for s in board["snakes"] if _is_live(s)],
    }


def save_html(boards: Sequence[Mapping], path: str | Path, *, fps: float = 6.0, cell: int = 28,
              turns: Sequence[int] | None = None, title: str = "Battlesnake replay", result: str = "") -> Path:
    """Write a single self-contained HTML page that replays the boards (no network resources: the frames are inline
    JSON, drawn on a canvas by inline JavaScript in the colours ``render_rgb`` uses) and return the path.

    Controls: play/pause, step back/forward, first/last, a turn slider and a speed choice; keys: space, arrows,
    Home, End. ``turns`` labels the frames (default 0, 1, ...); ``result`` is shown on the last frame.
    """
    if not boards:
        raise ValueError("no boards to draw")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if turns is not None and len(turns) != len(boards):
        raise ValueError(f"{len(turns)} turns given for {len(boards)} boards")
    colours = snake_colours(boards)
    data = {
        "width": int(boards[0]["width"]), "height": int(boards[0]["height"]), "cell": cell, "fps": fps,
        "result": result,
        "frames": [_compact(b, int(turns[i]) if turns is not None else i) for i, b in enumerate(boards)],
        "colours": {sid: {"body": _css(c), "head": _css(head_colour(c))} for sid, c in colours.items()},
        "style": {"grid": _css(GRID_COLOUR), "empty": _css(EMPTY_COLOUR), "food": _css(FOOD_COLOUR),
                  "eye": _css(EYE_COLOUR), "hazards": [_css(hazard_shade(n)) for n in range(0, 10)]},
    }
    # "<" is escaped so that no string in the data (a snake's name) can close the script element.
    payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    page = _HTML.replace("__TITLE__", html.escape(title)).replace("__DATA__", payload)
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


def _css(colour: Colour) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>__TITLE__</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 16px; color: #222; background: #fafafa; }
  #main { display: flex; gap: 20px; align-items: flex-start; }
  #controls { margin-top: 10px; display: flex; gap: 6px; align-items: center; }
  #controls button { min-width: 2.6em; }
  #slider { width: 260px; }
  #turn { font-weight: 600; margin-bottom: 8px; }
  #snakes div { margin: 4px 0; white-space: nowrap; }
  .swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: middle; }
  .out { color: #999; text-decoration: line-through; }
  #result { margin-top: 10px; font-weight: 600; }
</style>
</head>
<body>
<h3>__TITLE__</h3>
<div id="main">
  <div>
    <canvas id="board"></canvas>
    <div id="controls">
      <button id="first" title="first turn (Home)">|&lt;</button>
      <button id="back" title="step back (left arrow)">&lt;</button>
      <button id="play" title="play / pause (space)">play</button>
      <button id="next" title="step forward (right arrow)">&gt;</button>
      <button id="last" title="last turn (End)">&gt;|</button>
      <input id="slider" type="range" min="0" value="0">
      <select id="speed" title="frames per second"></select>
    </div>
  </div>
  <div><div id="turn"></div><div id="snakes"></div><div id="result"></div></div>
</div>
<script id="replay-data" type="application/json">__DATA__</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("replay-data").textContent);
const W = data.width, H = data.height, C = data.cell, frames = data.frames, style = data.style;
const canvas = document.getElementById("board"), ctx = canvas.getContext("2d");
canvas.width = W * C; canvas.height = H * C;
const slider = document.getElementById("slider"), playButton = document.getElementById("play");
const speed = document.getElementById("speed");
slider.max = frames.length - 1;
const allIds = Object.keys(data.colours);
const names = {};
for (const f of frames) for (const s of f.snakes) names[s.id] = s.name;
let index = 0, timer = null;

function rect(x, y, x0, y0, x1, y1, colour) {  // part [x0, x1) x [y0, y1) of board cell (x, y); y up
  ctx.fillStyle = colour;
  ctx.fillRect(x * C + x0, (H - 1 - y) * C + y0, x1 - x0, y1 - y0);
}

const line = C >= 6 ? 1 : 0, m = Math.max(1, Math.floor(C / 8));

function join(x, y, dx, dy, colour) {  // the margin strip of cell (x, y) on its side toward (x + dx, y + dy)
  if (dx === 1) rect(x, y, C - m, m, C, C - m, colour);
  else if (dx === -1) rect(x, y, 0, m, m, C - m, colour);
  else if (dy === 1) rect(x, y, m, 0, C - m, m, colour);
  else rect(x, y, m, C - m, C - m, C, colour);
}

function draw(f) {
  ctx.fillStyle = line ? style.grid : style.empty;
  ctx.fillRect(0, 0, W * C, H * C);
  const stacked = {};
  for (const [x, y, n] of f.hazards) stacked[x + "," + y] = n;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const n = Math.min(stacked[x + "," + y] || 0, style.hazards.length - 1);
    rect(x, y, line, line, C, C, style.hazards[n]);
  }
  ctx.fillStyle = style.food;
  for (const [x, y] of f.food) {
    ctx.beginPath();
    ctx.arc(x * C + C / 2, (H - 1 - y) * C + C / 2, C * 0.32, 0, 2 * Math.PI);
    ctx.fill();
  }
  for (const s of f.snakes) {
    const col = data.colours[s.id], b = s.body;
    for (let j = b.length - 1; j >= 0; j--) {
      const [x, y] = b[j];
      rect(x, y, m, m, C - m, C - m, j === 0 ? col.head : col.body);
      if (j + 1 < b.length) {  // join to the next segment toward the tail when it is drawn beside this one
        const [nx, ny] = b[j + 1], dx = nx - x, dy = ny - y;
        if (Math.abs(dx) + Math.abs(dy) === 1) { join(x, y, dx, dy, col.body); join(nx, ny, -dx, -dy, col.body); }
      }
    }
    if (b.length && C >= 8) {
      const [hx, hy] = b[0];
      let dx = 0, dy = 1;
      for (const [nx, ny] of b.slice(1)) {
        if (nx !== hx || ny !== hy) {
          dx = hx - nx; dy = hy - ny;
          if (Math.abs(dx) > 1) dx = -Math.sign(dx);
          if (Math.abs(dy) > 1) dy = -Math.sign(dy);
          break;
        }
      }
      const size = Math.max(1, Math.floor(C / 7)), c = Math.floor(C / 2);
      const ahead = Math.round(C * 0.12), aside = Math.round(C * 0.22);
      for (const side of [-1, 1]) {
        const px = c + dx * ahead - dy * side * aside, py = c - dy * ahead - dx * side * aside;
        const x0 = px - Math.floor(size / 2), y0 = py - Math.floor(size / 2);
        rect(hx, hy, x0, y0, x0 + size, y0 + size, style.eye);
      }
    }
  }
}

function show(i) {
  index = Math.max(0, Math.min(frames.length - 1, i));
  const f = frames[index];
  draw(f);
  slider.value = index;
  document.getElementById("turn").textContent = "turn " + f.turn + "  (" + (index + 1) + " / " + frames.length + ")";
  const list = document.getElementById("snakes");
  list.replaceChildren();
  const live = {};
  for (const s of f.snakes) live[s.id] = s;
  for (const id of allIds) {
    const row = document.createElement("div"), swatch = document.createElement("span"), s = live[id];
    swatch.className = "swatch";
    swatch.style.background = data.colours[id].body;
    row.appendChild(swatch);
    const text = document.createElement("span");
    text.textContent = s ? names[id] + ": health " + s.health + ", length " + s.body.length : names[id] + ": out";
    if (!s) text.className = "out";
    row.appendChild(text);
    list.appendChild(row);
  }
  document.getElementById("result").textContent = index === frames.length - 1 ? data.result : "";
}

function pause() { if (timer !== null) { clearInterval(timer); timer = null; } playButton.textContent = "play"; }
function play() {
  pause();
  if (index >= frames.length - 1) show(0);
  playButton.textContent = "pause";
  timer = setInterval(() => { if (index >= frames.length - 1) pause(); else show(index + 1); },
                      1000 / Number(speed.value));
}
for (const fps of [1, 2, 4, 6, 10, 15, 30]) {
  const option = document.createElement("option");
  option.value = fps; option.textContent = fps + " fps";
  speed.appendChild(option);
}
if (![...speed.options].some(o => Number(o.value) === data.fps)) {
  const option = document.createElement("option");
  option.value = data.fps; option.textContent = data.fps + " fps";
  speed.appendChild(option);
}
speed.value = data.fps;
speed.onchange = () => { if (timer !== null) play(); };
playButton.onclick = () => (timer === null ? play() : pause());
document.getElementById("back").onclick = () => { pause(); show(index - 1); };
document.getElementById("next").onclick = () => { pause(); show(index + 1); };
document.getElementById("first").onclick = () => { pause(); show(0); };
document.getElementById("last").onclick = () => { pause(); show(frames.length - 1); };
slider.oninput = () => { pause(); show(Number(slider.value)); };
document.addEventListener("keydown", e => {
  if (e.target.tagName === "SELECT") return;
  if (e.key === " ") { e.preventDefault(); timer === null ? play() : pause(); }
  else if (e.key === "ArrowLeft") { pause(); show(index - 1); }
  else if (e.key === "ArrowRight") { pause(); show(index + 1); }
  else if (e.key === "Home") { pause(); show(0); }
  else if (e.key === "End") { pause(); show(frames.length - 1); }
});
show(0);
</script>
</body>
</html>
"""
