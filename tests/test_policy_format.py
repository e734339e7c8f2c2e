"""The exported-policy format (battlesnake_policy): the game spec in config.json, old and new, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from battlesnake_policy import FORMAT_NAME, ModelError, PolicySpec, read_config, write_config


def test_a_spec_round_trips_through_config_json_with_the_training_settings(tmp_path: Path) -> None:
    spec = PolicySpec(encoder="territory", view=21, width=11, height=11, num_snakes=2, ruleset="wrapped",
                      map="empty", max_turns=300)
    path = write_config(tmp_path, spec, training={"lr": 0.001})
    body = json.loads(path.read_text())
    assert body["format"] == FORMAT_NAME and body["training"] == {"lr": 0.001}
    assert read_config(path) == spec
    assert spec.obs_shape() == (16, 21, 21)


def test_the_flat_settings_older_runs_wrote_are_read_too(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"algorithm": "PPO", "encoder": "egocentric", "view": 11, "width": 7, "height": 7,
                                "lr": 0.0003}))
    spec = read_config(path)
    assert (spec.encoder, spec.view, spec.width, spec.num_snakes) == ("egocentric", 11, 7, PolicySpec().num_snakes)


@pytest.mark.parametrize(("values", "message"), [
    ({"encoder": "pixels"}, "unknown encoder 'pixels'"),
    ({"view": 4}, "view must be 0"),
    ({"width": "eleven"}, "width must be an integer"),
    ({"num_snakes": 0}, "num_snakes must be an integer >= 1"),
    ({"ruleset": "chess"}, "chess"),
])
def test_a_bad_spec_is_refused_naming_the_value(values: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"format": FORMAT_NAME, "game": values}))
    with pytest.raises(ModelError, match=message):
        read_config(path)


def test_an_unknown_format_or_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"format": "battlesnake-policy/9", "game": {}}))
    with pytest.raises(ModelError, match="battlesnake-policy/9"):
        read_config(path)
    path.write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        read_config(path)
