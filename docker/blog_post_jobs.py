"""The blog post's three training snippets, run as written in real SageMaker SDK local mode, and checked.

"Scaling your AI-powered Battlesnake with distributed reinforcement learning in Amazon SageMaker" trains with an
``RLEstimator`` in three ways: one instance; several instances of one type; and two jobs, a GPU primary and a CPU
secondary, that form one Ray cluster by meeting in S3. Each snippet below is the post's code with only its constants
changed: ``image_uri`` for the post's ``image_name`` (SDK v2 requires it for ``RLEstimator``; the post's v1 keywords
``train_instance_type`` and ``train_instance_count`` are kept, v2 maps them), ``instance_type = "local"``, a tiny
``num_iters``, no GPU (``rl.training.config.num_gpus: 0``), the CPU count of a local container, and the paths of
this project. The two heterogeneous jobs are started one after the other as in the post, each ``fit()`` in its own
thread (local mode's ``fit()`` returns only when its job has ended).

How to run (after docker/build_base.sh and docker/build.sh; ``make test-docker`` does it all)::

    python docker/blog_post_jobs.py                      # single, homogeneous, heterogeneous
    python docker/blog_post_jobs.py --only heterogeneous --image battlesnake-rl:cpu

Checked for each job: every container exited 0; model.tar.gz holds policy.pt, policy.onnx and config.json, and both
policies pick the same legal moves; the post's metric definitions (``RLEstimator.default_metric_definitions(
RLToolkit.RAY)``: ``episode_reward_mean: X``, ``episode_reward_max: X``) find values in the job's log; config.json
records the post's ``num_agents`` as 5 snakes and the env runners that ran; env runners ran on every host of a
homogeneous job and on both jobs' hosts of the heterogeneous run, whose secondary containers joined the primary's
Ray cluster past an earlier run's records left under the same prefix; and no Ray token is left in S3 afterwards.

Results to expect: on the 2-core CI machine kind, 1 to 3 minutes per snippet (docker/README.md has measured times).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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
    env_runner_hosts,
    main_guard,
    metric_values,
    run_concurrently,
    run_job,
)

SNIPPETS = ("single", "homogeneous", "heterogeneous")
JOB_TIMEOUT_S = 8 * 60

# ---------------------------------------------------------------- the post's constants, changed for local mode
instance_type = "local"  # the post: ml.c5.2xlarge and friends (ml.p3.2xlarge for the GPU primary)
num_iters = 1  # the post: a real budget; one iteration here
num_cpus = os.cpu_count() or 2  # the post: the instance type's vCPUs; a local-mode container sees this machine's
job_name_prefix = "battlesnake-post"
source_dir, dependencies = str(SOURCE_DIR), [str(d) for d in DEPENDENCIES]  # the post: "src", ["common/..."]


def estimator(image: str, out: Path, aws: LocalAws, job_name: str, **settings):
    """The post's ``RLEstimator(...)`` call; its settings (instance type and count, hyperparameters, VPC) given."""
    from sagemaker.rl import RLEstimator, RLToolkit

    metric_definitions = RLEstimator.default_metric_definitions(RLToolkit.RAY)
    return RLEstimator(entry_point="train-mabs.py", source_dir=source_dir, dependencies=dependencies,
                       image_uri=image, role=ROLE, output_path=f"file://{out}", base_job_name=job_name_prefix,
                       metric_definitions=metric_definitions, sagemaker_session=aws.session(out, job_name),
                       **settings)


# ---------------------------------------------------------------- the three snippets
def single(image: str, out: Path, aws: LocalAws) -> None:
    job_name = f"{job_name_prefix}-single-{time.strftime('%H%M%S')}"
    single_instance = estimator(
        image, out, aws, job_name,
        train_instance_type=instance_type, train_instance_count=1,
        hyperparameters={"num_iters": num_iters, "num_agents": 5, "rl.training.config.num_gpus": 0,
                         "rl.training.config.num_cpus": num_cpus - 1})
    run = run_job(single_instance, job_name, JOB_TIMEOUT_S, log_dir=out)
    run.check_exits(1)
    config = check_job(run, runners=num_cpus - 1)
    print(f"single: {run.seconds:.0f} s, env runners {config['training']['num_env_runners']}", flush=True)


def homogeneous(image: str, out: Path, aws: LocalAws) -> None:
    job_name = f"{job_name_prefix}-homogeneous-{time.strftime('%H%M%S')}"
    train_instance_count = 2  # the post: 3
    homogeneous_instances = estimator(
        image, out, aws, job_name,
        train_instance_type=instance_type, train_instance_count=train_instance_count,
        hyperparameters={"num_iters": num_iters, "num_agents": 5,
                         "rl.training.config.num_workers": num_cpus * train_instance_count - 1,
                         "rl.training.config.num_gpus": 0})
    run = run_job(homogeneous_instances, job_name, JOB_TIMEOUT_S, log_dir=out)
    run.check_exits(train_instance_count)
    check_job(run, runners=num_cpus * train_instance_count - 1)
    runners = env_runner_hosts(run.head_log)
    if set(runners) != set(run.hosts):
        raise JobCheckError(f"homogeneous: env runners ran on {runners}, not on every host {run.hosts}")
    print(f"homogeneous: {run.seconds:.0f} s, env runners {runners}", flush=True)


def heterogeneous(image: str, out: Path, aws: LocalAws) -> None:
    s3_bucket, s3_prefix, aws_region = aws.bucket, f"{job_name_prefix}/rl-cluster", "us-east-1"
    secondary_instance_count = 2
    cpus = num_cpus * (1 + secondary_instance_count)  # every CPU of the cluster: the primary's and the secondaries'
    subnets, security_group_ids = ["subnet-0123456789abcdef0"], ["sg-0123456789abcdef0"]  # local mode ignores them
    earlier_run(aws, s3_prefix)
    stamp = time.strftime("%H%M%S")
    primary_job, secondary_job = f"{job_name_prefix}-primary-{stamp}", f"{job_name_prefix}-secondary-{stamp}"
    primary = estimator(
        image, out, aws, primary_job,
        train_instance_type=instance_type, train_instance_count=1, subnets=subnets,
        security_group_ids=security_group_ids,
        hyperparameters={"s3_prefix": s3_prefix, "s3_bucket": s3_bucket, "aws_region": aws_region,
                         "rl_cluster_type": "primary", "rl_num_instances_secondary": secondary_instance_count,
                         "rl.training.config.num_workers": cpus - 1, "rl.training.config.num_gpus": 0,
                         "num_iters": num_iters, "num_agents": 5})
    secondary = estimator(
        image, out, aws, secondary_job,
        train_instance_type=instance_type, train_instance_count=secondary_instance_count, subnets=subnets,
        security_group_ids=security_group_ids,
        hyperparameters={"s3_prefix": s3_prefix, "s3_bucket": s3_bucket, "aws_region": aws_region,
                         "rl_cluster_type": "secondary", "num_iters": num_iters, "num_agents": 5})
    first, second = run_concurrently([(primary, primary_job, JOB_TIMEOUT_S, None, out),
                                      (secondary, secondary_job, JOB_TIMEOUT_S, None, out)])
    first.check_exits(1)
    second.check_exits(secondary_instance_count)
    check_job(first, runners=cpus - 1)
    for host in second.hosts:
        second.expect_in_log(host, "joined the Ray cluster", "the head announced the end of training; leaving")
    runners = env_runner_hosts(first.head_log)
    if not any(h.startswith("secondary/") for h in runners) or not any("/" not in h for h in runners):
        raise JobCheckError(f"heterogeneous: env runners ran on {runners}, not on both jobs' hosts")
    first.expect_in_log(first.hosts[0], "deleted the Ray token record")
    left = aws.objects(s3_prefix)
    tokens = sorted(key for key, body in left.items() if key.endswith("token.json") or b"auth_token" in body)
    if tokens:
        raise JobCheckError(f"heterogeneous: a Ray token is left in S3 after the run: {tokens}")
    print(f"heterogeneous: {max(first.seconds, second.seconds):.0f} s, env runners {runners}; left in "
          f"s3://{s3_bucket}/{s3_prefix}/: {sorted(left)}", flush=True)


def earlier_run(aws: LocalAws, prefix: str) -> None:
    """Records an earlier run left under the same prefix (it ended, its head is gone): the jobs must pass them by."""
    client = aws.client()
    for name, record in (("head.json", {"run_id": None, "address": "10.255.255.1:6379", "host": "algo-1",
                                        "session": "an-earlier-run", "auth": "published", "written_at": 1.0}),
                         ("token.json", {"run_id": None, "session": "an-earlier-run", "auth_token": "stale"}),
                         ("done.json", {"run_id": None, "session": "an-earlier-run", "success": True})):
        client.put_object(Bucket=aws.bucket, Key=f"{prefix}/{name}", Body=json.dumps(record).encode())


def check_job(run, runners: int) -> dict:
    """The model, the post's metric lines and the run's recorded settings of one job's head."""
    from sagemaker.rl import RLEstimator, RLToolkit

    config = check_model(run.model_tar, run.name)
    found = metric_values(RLEstimator.default_metric_definitions(RLToolkit.RAY), run.head_log)
    if not found.get("episode_reward_mean") or not found.get("episode_reward_max"):
        raise JobCheckError(f"{run.name}: the post's metric definitions found {found} in the head's log (expected "
                            "values for episode_reward_mean and episode_reward_max)")
    training = config["training"]
    if (training["num_snakes"], training["num_env_runners"]) != (5, runners):
        raise JobCheckError(f"{run.name}: config.json records num_snakes={training['num_snakes']}, "
                            f"num_env_runners={training['num_env_runners']}; expected 5 (num_agents) and {runners}")
    print(f"{run.name}: the post's metrics {found}", flush=True)
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="battlesnake-rl:cpu", help="the training image (docker/build.sh)")
    parser.add_argument("--only", default=",".join(SNIPPETS), help=f"comma-separated: {', '.join(SNIPPETS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "docker-blog-post",
                        help="output_path of the jobs (model.tar.gz) and the SDK's container folders")
    args = parser.parse_args(argv)
    chosen = [s for s in args.only.split(",") if s]
    unknown = [s for s in chosen if s not in SNIPPETS]
    if unknown:
        parser.error(f"unknown snippet(s) {unknown}; known: {', '.join(SNIPPETS)}")
    out = args.out.resolve()

    def scenario() -> None:
        check_docker(args.image)
        with LocalAws() as aws:
            for name in chosen:
                started = time.monotonic()
                globals()[name](args.image, out, aws)
                print(f"==> blog post, {name}: passed in {time.monotonic() - started:.0f} s", flush=True)

    return main_guard(scenario, f"blog post snippets ({', '.join(chosen)})")


if __name__ == "__main__":
    sys.exit(main())
