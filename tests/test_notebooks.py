"""The notebooks run: every ``notebooks/*.ipynb`` executed top to bottom by a real Jupyter kernel in local mode
(``BATTLESNAKE_RL_LOCAL=1``: moto stand-ins for S3 and SageMaker, the docker-free local runner, tiny budgets), failing
on any cell's error; they are committed without outputs and listed in the folder's index; and the helpers they share
(``sagemaker_rl.notebook``) do what the notebooks rely on.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path

import pytest

from sagemaker_rl import notebook as nb

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_local_quickstart", "02_sagemaker_single_instance", "03_sagemaker_homogeneous",
            "04_sagemaker_heterogeneous", "05_heuristics_and_deployment"]
#: Seconds one cell may run in local mode (the longest is a local training job on a loaded 2-core machine).
CELL_TIMEOUT_S = 420


def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


# ---------------------------------------------------------------------------------------------- the folder


def test_the_folder_holds_the_five_notebooks_of_its_index() -> None:
    assert [p.stem for p in NOTEBOOKS] == EXPECTED
    index = (REPO / "notebooks" / "README.md").read_text()
    linked = re.findall(r"\]\(([^)]+\.ipynb)\)", index)
    assert linked == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_is_committed_valid_and_without_outputs(path: Path) -> None:
    import nbformat

    notebook = _read(path)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    dirty = [i for i, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert dirty == [], f"{path.name}: cells {dirty} carry outputs; clear them (CI executes the notebook fresh)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebooks_first_code_cell_reads_the_local_switch(path: Path) -> None:
    first = _code_cells(_read(path))[0].source
    assert "from sagemaker_rl import notebook as nb" in first
    assert re.search(r"\bnb\.(connect|local_mode)\(\)", first), f"{path.name}: the first code cell must read the " \
                                                                  f"switch (nb.connect() or nb.local_mode())"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_uses_shell_escapes_that_cannot_fail_a_cell(path: Path) -> None:
    # `!cmd` carries on when cmd fails, which is how the old starter pack's notebooks rotted unnoticed.
    escapes = [line for cell in _code_cells(_read(path)) for line in cell.source.splitlines()
               if line.lstrip().startswith(("!", "%%bash", "%%sh", "%system"))]
    assert escapes == []


# ---------------------------------------------------------------------------------------------- executed


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One working folder for all the notebooks, as a user's checkout: notebook 5 finds notebook 1's run there."""
    return tmp_path_factory.mktemp("notebooks")


def _outputs(notebook) -> list[dict]:
    return [output for cell in _code_cells(notebook) for output in cell.outputs]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_runs_top_to_bottom_in_local_mode(path: Path, workdir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv(nb.LOCAL_ENV, "1")
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)  # a kernel that reached for AWS would fail, not use a real account
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    notebook = _read(path)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()  # raises CellExecutionError (with the cell's traceback) on the first failing cell
    finally:
        executed = workdir / "executed"
        executed.mkdir(exist_ok=True)
        nbformat.write(notebook, executed / path.name)  # the outputs, for whoever reads a failure
    outputs = _outputs(notebook)
    assert not [o for o in outputs if o.output_type == "error"]
    assert all(cell.execution_count for cell in _code_cells(notebook)), "a cell was skipped"
    if path.stem == "01_local_quickstart":
        mimes = {mime for o in outputs for mime in o.get("data", {})}
        assert "image/gif" in mimes, "notebook 1 must show the replay inline as a GIF"
        assert any("<iframe srcdoc=" in o.get("data", {}).get("text/html", "") for o in outputs)


# ---------------------------------------------------------------------------------------------- the helpers


@pytest.mark.parametrize(("value", "local"), [("1", True), ("true", True), ("YES", True), ("", False), ("0", False),
                                              ("off", False)])
def test_the_switch_reads_the_usual_spellings_of_yes_and_no(value: str, local: bool) -> None:
    assert nb.local_mode({nb.LOCAL_ENV: value}) is local
    assert nb.local_mode({}) is False


def test_a_misspelt_switch_is_an_error_rather_than_a_trip_to_real_aws() -> None:
    with pytest.raises(nb.NotebookError, match="BATTLESNAKE_RL_LOCAL='ture'"):
        nb.local_mode({nb.LOCAL_ENV: "ture"})


def test_pick_gives_the_local_budget_only_in_local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(nb.LOCAL_ENV, "1")
    assert nb.pick(60, local=0.5) == 0.5
    monkeypatch.setenv(nb.LOCAL_ENV, "0")
    assert nb.pick(60, local=0.5) == 60


def test_run_returns_a_commands_lines_and_prints_those_echo_keeps(capsys: pytest.CaptureFixture,
                                                                 tmp_path: Path) -> None:
    code = "import sys; print('keep 1'); print('hide 2'); print('keep 3', file=sys.stderr)"
    lines = nb.run(sys.executable, "-c", code, echo=lambda line: line.startswith("keep"), log=tmp_path / "log")
    assert lines == ["keep 1", "hide 2", "keep 3"]
    assert capsys.readouterr().out.splitlines() == ["keep 1", "keep 3"]
    assert (tmp_path / "log").read_text().splitlines() == lines


def test_a_failing_command_fails_the_cell_with_its_last_lines() -> None:
    code = "import sys; [print(i) for i in range(100)]; sys.exit(3)"
    with pytest.raises(nb.CommandError, match="exited with status 3") as caught:
        nb.run(sys.executable, "-c", code, echo=lambda _: False, tail=5)
    assert caught.value.tail == ["95", "96", "97", "98", "99"]


def test_an_interrupted_command_is_ended_rather_than_left_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); print('started', flush=True); " \
           f"time.sleep(600)"

    def interrupt(line: str) -> bool:
        raise KeyboardInterrupt  # what Jupyter's interrupt button raises in the kernel

    with pytest.raises(KeyboardInterrupt):
        nb.run(sys.executable, "-c", code, echo=interrupt)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone (and reaped): run waited for it after ending it


def test_a_missing_command_is_named() -> None:
    with pytest.raises(nb.NotebookError, match="no command 'no-such-command-here'"):
        nb.run("no-such-command-here")


def test_a_background_command_that_ends_before_answering_is_reported_with_its_output(tmp_path: Path) -> None:
    code = "print('cannot start: port taken'); raise SystemExit(2)"
    with pytest.raises(nb.NotebookError, match="(?s)status 2 before .* answered.*port taken"):
        nb.Background(sys.executable, "-c", code, log=tmp_path / "server.log", ready_url="http://127.0.0.1:9/",
                      timeout_s=20)


def test_metrics_are_read_from_a_log_with_the_definitions_the_launcher_submits() -> None:
    pytest.importorskip("ray.rllib")
    from battlesnake_rllib.run import metric_lines
    from sagemaker_rl.launch import metric_definitions

    log = ["Token authentication is enabled", *metric_lines({"iteration": 1, "episode_return_mean": -0.5}),
           "progress: [##  ] 10%", *metric_lines({"iteration": 2, "episode_return_mean": 0.25,
                                                  "win_rate_vs_safe": 0.75, "env_steps_per_s": float("nan")})]
    frame = nb.metrics_from_log(log, metric_definitions())
    got = [(row.metric_name, row.value) for row in frame.itertuples()]
    assert got == [("iteration", 1.0), ("episode_return_mean", -0.5), ("iteration", 2.0),
                   ("episode_return_mean", 0.25), ("win_rate_vs_safe", 0.75)]  # nan is no number: not recorded
    assert list(frame.columns) == ["timestamp", "metric_name", "value"]
    assert frame.timestamp.is_monotonic_increasing and not any(math.isnan(t) for t in frame.timestamp)


def test_an_s3_uri_splits_into_bucket_and_key_and_anything_else_is_refused() -> None:
    assert nb.split_s3_uri("s3://b/a/model.tar.gz") == ("b", "a/model.tar.gz")
    with pytest.raises(nb.NotebookError, match="not an s3://bucket/key URI"):
        nb.split_s3_uri("/tmp/model.tar.gz")


def test_a_local_endpoint_serves_requests_through_its_scripts_handler_functions(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (tmp_path / "weights.json").write_text(json.dumps({"scale": 3}))
    (code / "inference.py").write_text(
        "import json, os\n"
        "def model_fn(model_dir):\n    return json.load(open(os.path.join(model_dir, 'weights.json')))\n"
        "def input_fn(body, content_type):\n    assert content_type == 'application/json'\n"
        "    return json.loads(body)\n"
        "def predict_fn(data, model):\n    return {'y': data['x'] * model['scale']}\n"
        "def output_fn(prediction, accept):\n    return json.dumps(prediction), accept\n")
    endpoint = nb.LocalEndpoint(tmp_path)
    assert endpoint.predict({"x": 4}) == {"y": 12}
    (code / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    with pytest.raises(nb.NotebookError, match="lacks the handler function.*input_fn, predict_fn, output_fn"):
        nb.LocalEndpoint(tmp_path)
