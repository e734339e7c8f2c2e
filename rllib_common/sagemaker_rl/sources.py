"""What the project ships to SageMaker: the one list of the sources of a training job's ``source_dir``, and of an
endpoint's.

A job runs ``train-mabs.py`` from ``source_dir`` (the checkout's ``rllib_src``, holding the training package
``battlesnake_rllib`` beside it), with the game (``battlesnake_gym``), the policy format (``battlesnake_policy``) and
this platform layer (``sagemaker_rl``) as SDK ``dependencies``: the SDK copies each folder into the root of
``sourcedir.tar.gz``, beside the entry point. The launcher, the docker-free local runner and the Docker stage's SDK
local-mode jobs all ship this list; none keeps its own.

An endpoint (``sagemaker_rl.deploy``) runs ``battlesnake_server/sagemaker_entry/inference.py`` with the arena server,
the game and the policy format beside it (:func:`endpoint_sources`). Nothing that is built on this machine is shipped
(:data:`NOT_SHIPPED`: bytecode, numba's caches compiled for this CPU, notebook checkpoints).

The platform layer stays generic: it never imports the game or the training package, it only finds their folders
(``importlib.util.find_spec`` does not import them).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from .launch_settings import PROJECT_ROOT_ENV, LaunchError

ENTRY_POINT = "train-mabs.py"
SOURCE_FOLDER = "rllib_src"  # the checkout's source_dir
TRAINING_PACKAGE = "battlesnake_rllib"  # shipped inside source_dir, beside the entry point
GAME_PACKAGES = ("battlesnake_gym", "battlesnake_policy")  # the game and the policy format: dependency folders
PLATFORM_FOLDER = Path("rllib_common") / "sagemaker_rl"  # this package, in the checkout
#: The checkout this package sits in (rllib_common/sagemaker_rl -> the project) when installed editable.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENDPOINT_ENTRY_POINT = "inference.py"
ENDPOINT_SOURCE_FOLDER = Path("battlesnake_server") / "sagemaker_entry"
ENDPOINT_PACKAGES = ("battlesnake_server", "battlesnake_gym", "battlesnake_policy")
#: Left out of every shipped folder: built for this machine (the container builds its own) or editor state.
NOT_SHIPPED = ("__pycache__", "*.pyc", "*.nbi", "*.nbc", ".pytest_cache", ".ipynb_checkpoints")


@dataclass(frozen=True)
class Sources:
    """The folders shipped with every job: ``source_dir`` (holding the entry point) and dependency folders."""

    source_dir: Path
    entry_point: str
    dependencies: tuple[Path, ...]


def checkout_sources(root: str | os.PathLike = PROJECT_ROOT) -> Sources:
    """Where the shipped sources are in a project checkout at ``root``; nothing is checked (:func:`find_sources`
    checks)."""
    root = Path(root)
    return Sources(source_dir=root / SOURCE_FOLDER, entry_point=ENTRY_POINT,
                   dependencies=(*(root / name for name in GAME_PACKAGES), root / PLATFORM_FOLDER))


def endpoint_sources(root: str | os.PathLike = PROJECT_ROOT) -> Sources:
    """Where an endpoint's sources are in a project checkout at ``root``; nothing is checked (``deploy`` checks)."""
    root = Path(root)
    return Sources(source_dir=root / ENDPOINT_SOURCE_FOLDER, entry_point=ENDPOINT_ENTRY_POINT,
                   dependencies=tuple(root / name for name in ENDPOINT_PACKAGES))


def copy_clean(folder: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy ``folder`` to ``target`` (merged into it when it exists) without :data:`NOT_SHIPPED` files."""
    return Path(shutil.copytree(folder, target, ignore=shutil.ignore_patterns(*NOT_SHIPPED), dirs_exist_ok=True))


def find_sources(project_root: str | os.PathLike | None = None) -> Sources:
    """The training sources to ship, from a project checkout or next to the installed packages.

    ``project_root`` (else ``$BATTLESNAKE_RL_PROJECT_ROOT``) names a checkout; without one the packages are located
    where they are installed. Raises ``LaunchError`` naming every file that is missing.
    """
    root = project_root or os.environ.get(PROJECT_ROOT_ENV)
    if root:
        root = Path(root).expanduser().resolve()
        sources = checkout_sources(root)
        where = f"project root {root}"
    else:
        sources = Sources(source_dir=_package_folder(TRAINING_PACKAGE).parent, entry_point=ENTRY_POINT,
                          dependencies=(*(_package_folder(name) for name in GAME_PACKAGES),
                                        Path(__file__).resolve().parent))
        where = "the installed packages"
    *games, platform = sources.dependencies
    needed = {sources.source_dir / ENTRY_POINT: "the entry point",
              sources.source_dir / TRAINING_PACKAGE / "__init__.py": "the training package",
              **{game / "__init__.py": f"the {game.name} package" for game in games},
              platform / "__init__.py": "the platform package"}
    missing = [f"{path} ({what})" for path, what in needed.items() if not path.is_file()]
    if missing:
        raise LaunchError(f"cannot find the training sources from {where}: missing {', '.join(missing)}. Launch "
                          f"from a project checkout installed with `pip install -e .`, or pass project_root "
                          f"(--project-root, ${PROJECT_ROOT_ENV}) pointing at it")
    return sources


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise LaunchError(f"package {name!r} is not installed; pass project_root (--project-root) pointing at the "
                          f"project checkout")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def stage_sources(sources: Sources) -> tuple[Sources, tempfile.TemporaryDirectory]:
    """A clean copy of the sources (no ``__pycache__``, numba caches or notebook checkpoints) to upload.

    Returns the copy and the temporary folder holding it: the folder is deleted when that object is.
    """
    staging = tempfile.TemporaryDirectory(prefix="battlesnake-rl-sources-")
    root = Path(staging.name)
    source_dir = copy_clean(sources.source_dir, root / "source")
    dependencies = tuple(copy_clean(dep, root / "dependencies" / dep.name) for dep in sources.dependencies)
    return replace(sources, source_dir=source_dir, dependencies=dependencies), staging
