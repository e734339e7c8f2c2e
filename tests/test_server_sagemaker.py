"""The SageMaker inference handler functions (``input_fn``, ``predict_fn``, ``output_fn``, ``model_fn``) and
``package_model``, without AWS.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import (
    DELETE,
    FUZZ_PATHS,
    NO_SEARCH,
    assert_not_avoidably_fatal,
    json_values,
    recorded_frames,
    set_field,
    valid_body,
)

from battlesnake_gym.engine import MOVE_NAMES
from battlesnake_server.app import SnakeApp
from battlesnake_server.players import ModelError
from battlesnake_server.sagemaker_inference import (
    InvocationError,
    input_fn,
    model_fn,
    output_fn,
    package_model,
    predict_fn,
)

_FUZZ_APP = SnakeApp(safety=NO_SEARCH)


# ---------------------------------------------------------------- the SageMaker handler functions


def test_the_sagemaker_handlers_turn_a_move_body_into_a_move(shared, model_dir: Path) -> None:
    app = model_fn(str(model_dir))
    frame = recorded_frames("cli-export-royale-shrink5.jsonl")[12]
    body = {**frame, "you": frame["board"]["snakes"][0]}
    data = input_fn(json.dumps(body), "application/json; charset=utf-8")
    text, content_type = output_fn(predict_fn(data, app), "*/*")
    assert content_type == "application/json"
    assert_not_avoidably_fatal(body, json.loads(text)["move"])


def test_the_sagemaker_handlers_refuse_bad_requests_with_a_status(shared: Path, model_dir: Path) -> None:
    app = model_fn(str(model_dir))
    with pytest.raises(InvocationError) as error:
        input_fn("{}", "text/csv")
    assert error.value.status_code == 415
    with pytest.raises(InvocationError) as error:
        input_fn(b"{not json", "application/json")
    assert error.value.status_code == 400 and "not valid JSON" in error.value.message
    with pytest.raises(InvocationError) as error:
        predict_fn(input_fn(json.dumps(set_field(valid_body(), "board.width", 10**6)), "application/json"), app)
    assert error.value.status_code == 400 and "board.width" in error.value.message


@pytest.mark.parametrize(("path", "value", "fragment"), [
    ("game.timeout", 10**400, "game.timeout must be at most 60000"),
    ("board.snakes.1.id", "i" * 10**5, "board.snakes[1].id is longer than 256"),
    ("you.name", "n" * 300, "you.name is longer than 256"),
    ("turn", 2**64, "turn must be in"),
    ("board.snakes.0.health", -(10**400), "board.snakes[0].health"),
])
def test_the_sagemaker_handlers_answer_out_of_bounds_input_with_a_400_naming_the_field(
        shared: Path, path: str, value: Any, fragment: str) -> None:
    data = input_fn(json.dumps(set_field(valid_body(), path, value)), "application/json")
    with pytest.raises(InvocationError) as error:
        predict_fn(data, _FUZZ_APP)
    assert error.value.status_code == 400 and fragment in error.value.message


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FUZZ_PATHS), json_values() | st.just(DELETE)), min_size=1, max_size=3))
def test_fuzzed_bodies_through_the_sagemaker_handlers_get_a_move_or_a_400(shared, edits: list) -> None:
    body = valid_body()
    for path, value in edits:
        try:
            set_field(body, path, value)
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    try:
        text, _ = output_fn(predict_fn(input_fn(json.dumps(body), "application/json"), _FUZZ_APP), "*/*")
    except InvocationError as e:
        assert e.status_code == 400
    else:
        assert json.loads(text)["move"] in MOVE_NAMES


def test_the_endpoint_falls_back_to_the_onnx_policy_when_the_torchscript_file_does_not_load(model_dir: Path,
                                                                                              tmp_path: Path) -> None:
    for name in ("policy.onnx", "config.json"):
        (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    (tmp_path / "policy.pt").write_bytes(b"PK\x03\x04 not a torchscript archive")
    assert model_fn(str(tmp_path)).model.policy.format == "onnx"
    (tmp_path / "policy.onnx").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="no policy"):
        model_fn(str(tmp_path))


def test_package_model_writes_the_policy_and_its_config_flat_in_a_tarball(model_dir: Path, tmp_path: Path) -> None:
    out = package_model(model_dir, tmp_path / "out" / "model.tar.gz")
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["config.json", "policy.onnx", "policy.pt"]
    with pytest.raises(ModelError):
        package_model(tmp_path / "nowhere", tmp_path / "x.tar.gz")
