"""The ladder: Bradley-Terry ratings from pairings, and a small real round robin with a model, its search and a
snake server over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from server_helpers import exported_model

from battlesnake_server.app import SnakeApp
from battlesnake_server.httpd import start_in_thread
from battlesnake_server.ladder import MEAN_RATING, Pairing, bradley_terry, main, rate


def test_ratings_follow_the_results_and_centre_on_the_mean() -> None:
    names = ["a", "b", "c"]
    pairings = [Pairing("a", "b", [1] * 15 + [-1] * 5), Pairing("b", "c", [1] * 15 + [-1] * 5),
                Pairing("a", "c", [1] * 18 + [-1] * 2)]
    ratings = bradley_terry(names, pairings)
    assert ratings[0] > ratings[1] > ratings[2]
    assert np.mean(ratings) == pytest.approx(MEAN_RATING)
    # 3 to 1 odds between neighbours: about 190 Elo points apart (the prior pulls it in a little)
    assert 140 < ratings[0] - ratings[1] < 200


def test_even_results_give_even_ratings_and_draws_count_half() -> None:
    names = ["a", "b"]
    ratings = bradley_terry(names, [Pairing("a", "b", [1, -1] * 10)])
    assert ratings[0] == pytest.approx(ratings[1])
    drawn = bradley_terry(names, [Pairing("a", "b", [0] * 20)])
    assert drawn[0] == pytest.approx(drawn[1])


def test_a_clean_sweep_gets_a_finite_rating_and_an_interval_around_it() -> None:
    names = ["a", "b"]
    ratings, intervals = rate(names, [Pairing("a", "b", [1] * 30)], samples=50)
    assert np.isfinite(ratings).all() and ratings[0] > ratings[1]
    assert (intervals[:, 0] <= ratings + 1e-6).all() and (ratings <= intervals[:, 1] + 1e-6).all()


def test_a_round_robin_of_bots_a_model_its_search_and_a_server(tmp_path_factory, tmp_path: Path, capsys) -> None:
    model = exported_model(tmp_path_factory.getbasetemp())
    server = start_in_thread(SnakeApp(bot="greedy"))  # someone's snake server: a greedy bot over HTTP
    try:
        code = main(["--bot", "safe", "--model", f"tiny={model}", "--search", f"tiny+search={model}",
                     "--url", f"theirs={server.url}", "--games", "2", "--max-turns", "40", "--search-nodes", "40",
                     "--search-ms", "40", "--png", str(tmp_path / "ladder.png"), "--json"])
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in report["ratings"]} == {"safe", "tiny", "tiny+search", "theirs"}
    assert len(report["pairings"]) == 6 and all(p["wins"] + p["draws"] + p["losses"] == 2
                                                for p in report["pairings"])
    assert (tmp_path / "ladder.png").stat().st_size > 1000


def test_the_ladder_refuses_bad_entrants_before_any_game(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "battlesnake_rl.cli", "ladder", *args], capture_output=True,
                              text=True, timeout=120)

    result = run("--bot", "flood", "--bot", "chess")
    assert result.returncode == 2 and "unknown bot 'chess'" in result.stderr
    result = run("--bot", "flood")
    assert result.returncode == 2 and "at least two entrants" in result.stderr
    result = run("--bot", "flood", "--bot", "flood")
    assert result.returncode == 2 and "distinct names" in result.stderr
    result = run("--bot", "flood", "--model", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "no model at" in result.stderr
    result = run("--bot", "flood", "--url", "ftp://x")
    assert result.returncode == 2 and "not an http(s) URL" in result.stderr
