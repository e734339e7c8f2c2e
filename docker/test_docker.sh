#!/usr/bin/env bash
# The CI stage of the training image (`make test-docker`): install Docker when missing, start its daemon when it is
# not running, build the local base image and the training image, and run a real SageMaker SDK local-mode job of
# train-mabs.py in it (docker/local_mode_job.py), timing each phase.
#
#   PYTHON=.venv/bin/python docker/test_docker.sh      the Python with the project's test extra (sagemaker, moto)
#   DOCKER_JOB_HOSTS=1 ...                             instance_count of the job (default 2)
#
# Idempotent: a running dockerd, the base image and unchanged build steps are reused. A dockerd this script starts
# is left running (its log: /var/log/battlesnake-dockerd.log); the job's containers are removed after it, and a job
# past its time budget is killed, so the stage never hangs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
hosts="${DOCKER_JOB_HOSTS:-2}"
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
    timings+=("$(printf '%-16s %4d s%s' "$name" $((SECONDS - start)) "$([[ $code == 0 ]] || echo "  (exit $code)")")")
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
phase "local-mode job" "$python" "$root/docker/local_mode_job.py" --hosts "$hosts"
