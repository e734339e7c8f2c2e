"""A spot interruption in real SageMaker SDK local mode: SIGTERM to a running job's containers saves a checkpoint and
the model on every host's terms, and a second job resumes the iteration count from that checkpoint.

SageMaker stops a job (a spot interruption, StopTrainingJob) by sending SIGTERM to PID 1 of every container, then
SIGKILL after the grace period. In the training image PID 1 is ``sagemaker_rl.init``, which forwards the signal to
the training script (the toolkit's ``train`` forwards nothing). Here ``docker kill -s TERM`` does the same to both
containers of a 2-host job once the head has trained an iteration; then:

- the head's script finishes its iteration, saves a checkpoint (with its manifest) and exports the model, and ends
  training; the worker's script keeps its Ray node serving until the head has ended, then leaves: both exit 0;
- a second job with the same checkpoint folder resumes at the saved iteration and trains one more.

SDK local mode neither mounts ``/opt/ml/checkpoints`` nor syncs it to ``checkpoint_s3_uri``, so the checkpoint folder
is a ``file://`` input channel (a folder of this machine mounted into every container) that ``SM_CHECKPOINT_DIR``
points the contract at: what SageMaker's sync does between a job and its restart, done by a bind mount.

How to run (after docker/build_base.sh and docker/build.sh)::

    python docker/spot_stop_job.py [--image battlesnake-rl:cpu]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_mode import (  # noqa: E402
    DEPENDENCIES,
    ROLE,
    ROOT,
    SOURCE_DIR,
    JobCheckError,
    LocalAws,
    check_docker,
    check_model,
    kill_job,
    main_guard,
    run_job,
    wait_for_log,
)

HOSTS = 2
CHANNEL = "/opt/ml/input/data/checkpoints"
# The project's own hyperparameter names, a tiny budget: iterations of a second, many of them (SIGTERM ends it).
TINY = {"num_games": 8, "train_batch_size": 256, "minibatch_size": 128, "num_epochs": 1, "conv_filters": [4],
        "hidden": 16, "eval_every": 0, "eval_games": 2, "eval_opponents": "safe", "checkpoint_every": 1000,
        "minutes": 8, "imitate": ""}


def job(image: str, out: Path, aws: LocalAws, name: str, iterations: int):
    from sagemaker.rl import RLEstimator

    return RLEstimator(entry_point="train-mabs.py", source_dir=str(SOURCE_DIR),
                       dependencies=[str(d) for d in DEPENDENCIES], image_uri=image, role=ROLE,
                       instance_type="local", instance_count=HOSTS, output_path=f"file://{out}",
                       hyperparameters={**TINY, "iterations": iterations},
                       environment={"SM_CHECKPOINT_DIR": CHANNEL}, sagemaker_session=aws.session(out, name))


def scenario(image: str, out: Path) -> None:
    from sagemaker_rl.checkpoints import CheckpointStore

    check_docker(image)
    checkpoints = out / "checkpoints"
    shutil.rmtree(checkpoints, ignore_errors=True)
    checkpoints.mkdir(parents=True)
    inputs = {"checkpoints": f"file://{checkpoints}"}
    with LocalAws() as aws:
        # ---------------------------------------------------------------- the interrupted job
        stopped = f"battlesnake-spot-stop-{time.strftime('%H%M%S')}"
        runs = []
        thread = threading.Thread(target=lambda: runs.append(run_job(job(image, out, aws, stopped, 1000), stopped,
                                                                          8 * 60, inputs, out)), daemon=True)
        thread.start()
        wait_for_log(stopped, "iteration: 2", timeout_s=6 * 60)  # training is under way on the cluster
        kill_job(stopped, "TERM", "what SageMaker sends at a spot interruption or StopTrainingJob")
        signalled = time.monotonic()
        thread.join()
        run = runs[0]
        took = time.monotonic() - signalled
        run.check_exits(HOSTS)
        head, worker = run.hosts
        run.expect_in_log(head, "[sagemaker_rl.init] SIGTERM: forwarded to the training script",
                          "SIGTERM received: saving a checkpoint after this iteration", "stopped by SIGTERM")
        run.expect_in_log(worker, "[sagemaker_rl.init] SIGTERM: forwarded to the training script",
                          "SIGTERM received: this host keeps serving its env runners",
                          "the head announced the end of training; leaving")
        if took > 100:
            raise JobCheckError(f"{stopped}: the hosts took {took:.0f} s after SIGTERM to end (SageMaker kills them "
                                f"120 s after it)")
        at = int(re.search(r"stopped by SIGTERM at iteration (\d+)", run.head_log).group(1))
        store = CheckpointStore(checkpoints)
        newest = store.newest()
        if newest is None or newest.name != f"iteration-{at:06d}":
            raise JobCheckError(f"{stopped}: stopped at iteration {at} but the newest complete checkpoint in "
                                f"{checkpoints} is {newest}; incomplete: {store.incomplete()}")
        check_model(run.model_tar, stopped)
        print(f"{stopped}: SIGTERM at iteration >= 2; both hosts ended {took:.0f} s later, exit 0; checkpoint "
              f"{newest.name} complete; model exported", flush=True)

        # ---------------------------------------------------------------- the restarted job
        resumed = f"battlesnake-spot-resume-{time.strftime('%H%M%S')}"
        again = run_job(job(image, out, aws, resumed, at + 1), resumed, 8 * 60, inputs, out)
        again.check_exits(HOSTS)
        again.expect_in_log(again.hosts[0], f"resumed from {CHANNEL}/iteration-{at:06d} at iteration {at}",
                            f"iteration: {at + 1}")
        if store.newest() is None or store.newest().name != f"iteration-{at + 1:06d}":
            raise JobCheckError(f"{resumed}: no complete checkpoint of iteration {at + 1}; newest {store.newest()}")
        check_model(again.model_tar, resumed)
        print(f"{resumed}: resumed at iteration {at}, trained iteration {at + 1}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="battlesnake-rl:cpu", help="the training image (docker/build.sh)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "docker-spot-stop",
                        help="output_path of the jobs and the checkpoint folder they share")
    args = parser.parse_args(argv)
    return main_guard(lambda: scenario(args.image, args.out.resolve()), "spot stop and resume")


if __name__ == "__main__":
    sys.exit(main())
