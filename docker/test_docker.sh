#!/usr/bin/env bash
# The CI stage of the training image (`make test-docker`): install Docker when missing, start its daemon when it is
# not running, build the local base image and the training image, then run real SageMaker SDK local-mode jobs of
# train-mabs.py in it, timing each phase:
#   - the blog post's three snippets (docker/blog_post_jobs.py): one instance, two of one type, and a primary and a
#     secondary job meeting through S3 (a local moto server) to form one Ray cluster;
#   - a spot interruption (docker/spot_stop_job.py): SIGTERM to a running 2-host job's containers, then a second
#     job resuming from the checkpoint the first one saved.
#
#   PYTHON=.venv/bin/python docker/test_docker.sh      the Python with the project's test extra (sagemaker, moto)
#   DOCKER_JOBS=single,spot ...                        a subset of: single homogeneous heterogeneous spot
#
# Idempotent: a running dockerd, the base image and unchanged build steps are reused. A dockerd this script starts
# is left running (its log: /var/log/battlesnake-dockerd.log); the jobs' containers are removed after them, and a job
# past its time budget is killed, so the stage never hangs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
jobs="${DOCKER_JOBS:-single,homogeneous,heterogeneous,spot}"
timings=()
report_timings() {
    local code=$?
    [[ $code == 0 ]] && echo "==> test-docker: passed" || echo "==> test-docker: FAILED (exit $code)"
    printf '    %s\n' "${timings[@]}"
}
trap report_timings EXIT
phase() {  # phase NAME COMMAND...: run it, and record how long it took (failed or not)
    local name="$1" start=$SECONDS code=0
    shift
    echo "==> $name"
    "$@" || code=$?
    timings+=("$(printf '%-20s %4d s%s' "$name" $((SECONDS - start)) "$([[ $code == 0 ]] || echo "  (exit $code)")")")
    return $code
}

install_docker() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [[ ${#missing[@]} == 0 ]]; then
        echo "docker, docker-compose and debootstrap: installed"
        return
    fi
    if [[ $(id -u) != 0 ]]; then
        echo "error: ${missing[*]} missing, and installing them needs root (apt-get)" >&2
        exit 1
    fi
    apt-get update -qq
    # With recommends, as verified: debootstrap needs debian-archive-keyring, dockerd cgroupfs-mount without systemd.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

start_dockerd() {
    if docker info >/dev/null 2>&1; then
        echo "dockerd: running"
        return
    fi
    # No systemd on these machines: the daemon runs in the background, detached from this shell.
    setsid nohup dockerd >/var/log/battlesnake-dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 60); do
        if docker info >/dev/null 2>&1; then
            echo "dockerd: started (pid $(pgrep -o -x dockerd), log /var/log/battlesnake-dockerd.log)"
            return
        fi
        sleep 1
    done
    echo "error: dockerd did not answer within 60 s; its log:" >&2
    tail -20 /var/log/battlesnake-dockerd.log >&2
    exit 1
}

phase "install docker" install_docker
phase "start dockerd" start_dockerd
phase "base image" "$root/docker/build_base.sh"
phase "training image" timeout 25m "$root/docker/build.sh"
chosen() { [[ ",$jobs," == *",$1,"* ]]; }
for snippet in single homogeneous heterogeneous; do
    if chosen "$snippet"; then
        phase "post: $snippet" "$python" "$root/docker/blog_post_jobs.py" --only "$snippet"
    fi
done
if chosen spot; then
    phase "spot stop+resume" "$python" "$root/docker/spot_stop_job.py"
fi
