"""Run train-mabs.py as a real SageMaker SDK local-mode job in the training image, and check the model it makes.

How to run (after docker/build_base.sh and docker/build.sh; ``make test-docker`` does all three)::

    python docker/local_mode_job.py                          # 2 hosts, image battlesnake-rl:cpu
    python docker/local_mode_job.py --hosts 1 --image battlesnake-rl:cpu --out runs/docker-job

What runs is what SageMaker runs, minus AWS: ``sagemaker.rl.RLEstimator`` with ``instance_type="local"`` packs
``rllib_src`` (the source_dir) with the ``battlesnake_gym`` and ``sagemaker_rl`` dependencies into sourcedir.tar.gz
and uploads it to S3; the SDK writes each host's ``/opt/ml/input/config`` and starts one container per host
(algo-1, algo-2, ...) with docker-compose on one network; in each, the toolkit's ``train`` downloads the code, and
runs train-mabs.py, whose hosts form one Ray cluster. The SDK then packs ``/opt/ml/model`` into model.tar.gz under
``--out``. S3 is a moto server on this machine, listening on the docker bridge's address so that the SDK and the
containers reach it at the same URL. No AWS account or credentials are used (the role is a dummy ARN).

Checked at the end: the job succeeded, model.tar.gz holds policy.pt and policy.onnx (and config.json), and the
TorchScript and ONNX policies, loaded here without Ray, pick the same legal moves for a batch of observations. Any
failure exits non-zero naming what is wrong (with the job's own ``output/failure`` text when the training script
wrote one). A job still running after ``--timeout-minutes`` has its containers killed: the job never hangs CI.

Results to expect: on the 2-core CI machine kind, about a minute of container start-up and Ray cluster forming plus
one tiny training iteration per job (see docker/README.md for measured times).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "battlesnake-local"
ROLE = "arn:aws:iam::000000000000:role/battlesnake-local-mode"  # local mode never assumes it
JOB_LABEL = "battlesnake-rl.local-job"  # compose label on the job's containers, for the watchdog

# A tiny budget: one PPO iteration of a small network on small batches, a two-game evaluation, both exports.
TINY_HYPERPARAMETERS = {
    "iterations": 1,
    "minutes": 5,
    "num_games": 8,
    "train_batch_size": 256,
    "minibatch_size": 128,
    "num_epochs": 1,
    "conv_filters": [4],
    "hidden": 16,
    "eval_every": 0,
    "eval_games": 2,
    "eval_opponents": "safe",
}
MODEL_FILES = ("policy.pt", "policy.onnx", "config.json")


class JobCheckError(RuntimeError):
    """The local-mode job did not run, or its model artifact is missing or unusable."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="battlesnake-rl:cpu", help="the training image (docker/build.sh)")
    parser.add_argument("--hosts", type=int, default=2, help="instance_count: containers algo-1..algo-N")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "docker-local-job",
                        help="output_path of the job (model.tar.gz, output.tar.gz) and the SDK's container folders")
    parser.add_argument("--timeout-minutes", type=float, default=10.0, help="kill the job's containers after this")
    parser.add_argument("--s3-host", default=None,
                        help="address the local S3 server listens on, reachable from the host and the containers "
                             "(default: the docker0 bridge's address)")
    parser.add_argument("--hyperparameter", "-p", action="append", default=[], metavar="KEY=JSON",
                        help="add or replace a hyperparameter of the tiny budget (repeatable)")
    args = parser.parse_args(argv)
    if args.hosts < 1:
        parser.error(f"--hosts must be at least 1, got {args.hosts}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    hyperparameters = dict(TINY_HYPERPARAMETERS)
    for item in args.hyperparameter:
        key, sep, raw = item.partition("=")
        if not sep:
            print(f"error: --hyperparameter {item!r} must look like KEY=JSON (num_games=16)", file=sys.stderr)
            return 2
        try:
            hyperparameters[key] = json.loads(raw)
        except json.JSONDecodeError:
            hyperparameters[key] = raw
    try:
        check_docker(args.image)
        model_tar = run_job(args, hyperparameters)
        check_model(model_tar)
    except JobCheckError as exc:
        print(f"local-mode job FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"local-mode job OK: {args.hosts} host(s), model artifact {model_tar}")
    return 0


# ---------------------------------------------------------------------------------------------------------- the job
def run_job(args: argparse.Namespace, hyperparameters: dict) -> Path:
    """Run the estimator's job to the end; returns the local path of its model.tar.gz."""
    quiet_sdk()
    import boto3
    from moto.server import ThreadedMotoServer
    from sagemaker.local import LocalSession
    from sagemaker.rl import RLEstimator

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    s3_host = args.s3_host or interface_ipv4("docker0")
    port = free_port(s3_host)
    server = ThreadedMotoServer(ip_address=s3_host, port=port, verbose=False)
    server.start()
    endpoint = f"http://{s3_host}:{port}"
    job_name = f"battlesnake-local-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        # Dummy credentials: moto accepts any, and botocore then never probes for real ones (no metadata service).
        boto_session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local",
                                     region_name="us-east-1")
        boto_session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        session = LocalSession(boto_session=boto_session, s3_endpoint_url=endpoint)
        session.config = {"local": {
            "local_code": False,  # package source_dir + dependencies and ship them through S3, as on SageMaker
            "container_root": str(out / "containers"),
            # SageMaker instances have a large /dev/shm; Ray's object store lives there (docker's default: 64 MB).
            "container_config": {"shm_size": "1gb", "labels": {JOB_LABEL: job_name}},
        }}
        (out / "containers").mkdir(exist_ok=True)
        estimator = RLEstimator(
            entry_point="train-mabs.py",
            source_dir=str(ROOT / "rllib_src"),
            dependencies=[str(ROOT / "battlesnake_gym"), str(ROOT / "battlesnake_policy"),
                          str(ROOT / "rllib_common" / "sagemaker_rl")],
            image_uri=args.image,
            role=ROLE,
            instance_type="local",
            instance_count=args.hosts,
            hyperparameters=hyperparameters,
            output_path=f"file://{out / job_name}",
            code_location=f"s3://{BUCKET}/code",
            sagemaker_session=session,
        )
        print(f"job {job_name}: {args.hosts} host(s) of {args.image}, hyperparameters {hyperparameters}", flush=True)
        watchdog = Watchdog(job_name, args.timeout_minutes * 60)
        watchdog.start()
        started = time.time()
        try:
            estimator.fit(job_name=job_name, wait=True, logs="All")
        except Exception as exc:  # the SDK raises on a failed job; its failure text is the useful part
            if watchdog.fired:
                raise JobCheckError(f"job {job_name} ran past {args.timeout_minutes} minutes; its containers were "
                                    f"killed") from None
            raise JobCheckError(f"job {job_name} failed: {exc}{failure_text(out, job_name)}") from None
        finally:
            watchdog.cancel()
            exits = exit_codes(job_name)
            remove_containers(job_name)  # compose leaves them stopped; their files are under --out/containers
        print(f"job {job_name}: containers exited {exits}", flush=True)
        # docker-compose stops every container as soon as one exits: a host that had not finished by then shows
        # 137/143 here, and the SDK would still call the job a success.
        unfinished = {host: code for host, code in exits.items() if code != 0}
        if unfinished or len(exits) != args.hosts:
            raise JobCheckError(f"job {job_name}: not every host finished cleanly: {exits} (expected {args.hosts} "
                                f"hosts exiting 0; a host exiting before the others stops them all)")
        print(f"job {job_name}: finished in {time.time() - started:.0f} s", flush=True)
        model_tar = Path(estimator.model_data.removeprefix("file://"))
    finally:
        server.stop()
    if not model_tar.is_file():
        raise JobCheckError(f"the job reported success but wrote no model artifact at {model_tar}")
    return model_tar


def check_model(model_tar: Path) -> None:
    """model.tar.gz holds the exports, and the TorchScript policy plays a legal move without Ray."""
    import numpy as np

    with tarfile.open(model_tar) as tar:
        names = {Path(name).as_posix().removeprefix("./") for name in tar.getnames()}
        missing = [name for name in MODEL_FILES if name not in names]
        if missing:
            raise JobCheckError(f"{model_tar} lacks {missing}; it holds {sorted(names)}")
        folder = Path(tempfile.mkdtemp(prefix="battlesnake-model-"))
        tar.extractall(folder, filter="data")
    from battlesnake_policy import load_policy, read_config

    spec = read_config(folder / "config.json")
    mask = np.array([[True, False, False, False], [False, False, True, True], [True, True, True, True]])
    chosen = {}
    for name in ("policy.pt", "policy.onnx"):
        policy = load_policy(folder / name)
        obs = np.random.default_rng(0).integers(0, 2, size=(len(mask), *policy.obs_shape), dtype=np.uint8)
        actions = np.asarray(policy(obs, mask))
        if actions.shape != (len(mask),) or not all(mask[i, a] for i, a in enumerate(actions)):
            raise JobCheckError(f"{name} chose {actions.tolist()} for action masks {mask.tolist()}")
        chosen[name] = actions.tolist()
    if chosen["policy.pt"] != chosen["policy.onnx"]:
        raise JobCheckError(f"policy.pt and policy.onnx disagree on the same observations: {chosen}")
    print(f"model: {sorted(names)}; policy.pt and policy.onnx ({spec.encoder}, obs {policy.obs_shape}) "
          f"agree on legal moves {chosen['policy.pt']}")


def failure_text(out: Path, job_name: str) -> str:
    """The job's output/failure (written by train-mabs.py or the toolkit), from output.tar.gz when there is one."""
    output_tar = out / job_name / "output.tar.gz"  # output_path is out/<job name>
    if not output_tar.is_file():
        return ""
    with tarfile.open(output_tar) as tar:
        member = next((m for m in tar.getmembers() if Path(m.name).name == "failure"), None)
        text = tar.extractfile(member).read().decode(errors="replace").strip() if member else ""
    return f"\n--- output/failure ---\n{text}" if text else ""


# ------------------------------------------------------------------------------------------------------ plumbing
class Watchdog(threading.Timer):
    """Kills the job's containers (found by their compose label) when the job outlives its budget."""

    def __init__(self, job_name: str, seconds: float):
        super().__init__(seconds, self._kill)
        self.daemon = True
        self.job_name = job_name
        self.fired = False

    def _kill(self) -> None:
        self.fired = True
        ids = job_containers(self.job_name, running_only=True)
        print(f"job {self.job_name}: over its time budget, killing containers {ids}", file=sys.stderr, flush=True)
        if ids:
            subprocess.run(["docker", "kill", *ids], capture_output=True)


def job_containers(job_name: str, running_only: bool = False) -> list[str]:
    """IDs of the job's containers, found by the label the session config puts on them."""
    command = ["docker", "ps", "-q", "--filter", f"label={JOB_LABEL}={job_name}"]
    if not running_only:
        command.insert(3, "-a")
    return subprocess.run(command, capture_output=True, text=True).stdout.split()


def exit_codes(job_name: str) -> dict[str, int]:
    """Host name (compose service, algo-N-xxxxx) -> exit code of its container."""
    ids = job_containers(job_name)
    if not ids:
        return {}
    lines = subprocess.run(["docker", "inspect", "-f", '{{index .Config.Labels "com.docker.compose.service"}} '
                            "{{.State.ExitCode}}", *ids], capture_output=True, text=True).stdout.split("\n")
    return dict(sorted((host, int(code)) for host, code in (line.split() for line in lines if line.strip())))


def remove_containers(job_name: str) -> None:
    ids = job_containers(job_name)
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def check_docker(image: str) -> None:
    try:
        subprocess.run(["docker", "info"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        raise JobCheckError("docker is not running (make test-docker installs and starts it)") from None
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
        raise JobCheckError(f"no image {image!r} (build it with docker/build.sh)")
    if subprocess.run(["docker-compose", "version"], capture_output=True).returncode != 0:
        raise JobCheckError("docker-compose is missing (SageMaker local mode runs its containers with it)")


def interface_ipv4(name: str) -> str:
    """The IPv4 address of a network interface (SIOCGIFADDR), e.g. docker0's: the host as containers see it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
        except OSError:
            raise JobCheckError(f"no network interface {name!r} with an IPv4 address (pass --s3-host)") from None
    return socket.inet_ntoa(packed[20:24])


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def quiet_sdk() -> None:
    """No telemetry calls (there is no network to send them to) and no SDK v2 deprecation banner."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    if "SAGEMAKER_USER_CONFIG_OVERRIDE" not in os.environ:
        config = Path(tempfile.mkdtemp(prefix="sagemaker-config-")) / "config.yaml"
        config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
        os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(config)


if __name__ == "__main__":
    sys.exit(main())
