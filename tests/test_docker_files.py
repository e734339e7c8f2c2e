"""The training image's files, checked without Docker: what the slow `make test-docker` stage would find out late.

The image itself is built and run by ``make test-docker`` (docker/test_docker.sh: a real SageMaker SDK local-mode
job); these tests catch, in seconds, a Dockerfile pin that drifted from setup.py, a build context missing a package,
an image that would run its own code instead of the job's or swallow SIGTERM, and a local-mode hyperparameter
train-mabs.py no longer knows.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


def load_script(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of docker/Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def setup_kwargs(project: Path) -> dict:
    """packages, package_dir and extras_require as setup.py passes them to setuptools.setup(), run in ``project``."""
    probe = ("import json, runpy, setuptools; seen = {}; setuptools.setup = lambda **kw: seen.update(kw); "
             "runpy.run_path('setup.py', run_name='__main__'); "
             "print(json.dumps({k: seen.get(k) for k in ('packages', 'package_dir', 'extras_require')}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_dockerfile_pins_torch_and_ray_as_setup_py_does() -> None:
    args = dict(a.split("=", 1) for kind, a in dockerfile_instructions() if kind == "ARG" and "=" in a)
    extras = setup_kwargs(ROOT)["extras_require"]["rllib"]
    assert f"torch=={args['TORCH_VERSION']}" in extras
    assert f"ray[rllib]=={args['RAY_VERSION']}" in extras


def test_the_image_leaves_the_entry_point_and_the_code_folder_to_the_job() -> None:
    # The toolkit fetches the job's code only into an empty /opt/ml/code (a file baked there runs instead, silently),
    # and a SAGEMAKER_PROGRAM variable overrides the estimator's entry point for every job run on the image.
    instructions = dockerfile_instructions()
    touching = [f"{kind} {args}" for kind, args in instructions if "/opt/ml/code" in args]
    assert not touching, f"the Dockerfile writes into /opt/ml/code: {touching}"
    env = " ".join(args for kind, args in instructions if kind == "ENV")
    assert "SAGEMAKER_PROGRAM" not in env and "SAGEMAKER_SUBMIT_DIRECTORY" not in env
    assert instructions[-1] == ("CMD", '["train"]')


def test_the_images_pid_1_is_the_init_that_forwards_sigterm_to_the_training_script() -> None:
    # SageMaker runs `docker run IMAGE train`: `train` replaces CMD and becomes the ENTRYPOINT's argument
    entrypoints = [args for kind, args in dockerfile_instructions() if kind == "ENTRYPOINT"]
    assert entrypoints == ['["/opt/battlesnake/bin/python", "-m", "sagemaker_rl.init"]']


def test_the_build_context_holds_every_package_setup_py_installs_and_no_run_outputs(tmp_path: Path) -> None:
    context = tmp_path / "context"
    done = subprocess.run(["bash", str(DOCKER / "build.sh"), "--context-only", str(context)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    project = context / "project"
    kwargs = setup_kwargs(project)
    package_dir = kwargs["package_dir"] or {}
    for package in kwargs["packages"]:
        top, *rest = package.split(".")
        folder = Path(package_dir.get(top, top), *rest)
        assert (project / folder / "__init__.py").is_file(), f"package {package} ({folder}) missing from the context"
    assert (project / "rllib_src" / "train-mabs.py").is_file() and (context / "Dockerfile").is_file()
    assert not [p for p in project.rglob("*") if p.name in ("__pycache__", ".venv", "runs", ".git")]
    assert "find-links = /tmp/pip/wheels" in (context / "pip" / "pip.conf").read_text()


def test_the_spot_jobs_hyperparameters_are_settings_train_mabs_accepts() -> None:
    pytest.importorskip("ray")
    job = load_script(DOCKER / "spot_stop_job.py", "spot_stop_job")
    train = load_script(ROOT / "rllib_src" / "train-mabs.py", "train_mabs")
    from sagemaker_rl.hyperparameters import to_argv

    args, run = train.parse_args(to_argv({**job.TINY, "iterations": 3}, train.build_parser()))
    args.validate()
    assert (run.iterations, run.checkpoint_every, args.num_games) == (3, 1000, job.TINY["num_games"])


def test_the_blog_post_jobs_refuse_an_unknown_snippet_naming_the_known_ones(capsys: pytest.CaptureFixture) -> None:
    jobs = load_script(DOCKER / "blog_post_jobs.py", "blog_post_jobs")
    with pytest.raises(SystemExit):
        jobs.main(["--only", "single,hetero"])
    assert "unknown snippet(s) ['hetero']; known: single, homogeneous, heterogeneous" in capsys.readouterr().err


@pytest.mark.parametrize("script", sorted(p.name for p in DOCKER.glob("*.sh")))
def test_the_shell_scripts_parse(script: str) -> None:
    done = subprocess.run(["bash", "-n", str(DOCKER / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_torch_check_passes_this_machines_cpu_torch_and_fails_a_wrong_variant_or_pin() -> None:
    torch = pytest.importorskip("torch")
    check = load_script(DOCKER / "check_torch.py", "check_torch")
    version = torch.__version__.split("+")[0]
    variant = "cpu" if torch.version.cuda is None else "gpu"
    other = "gpu" if variant == "cpu" else "cpu"
    assert check.problem(variant, version) is None
    assert "image got a" in check.problem(other, version)
    assert "the pin is 0.0.1" in check.problem(variant, "0.0.1")
