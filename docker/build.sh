#!/usr/bin/env bash
# Build the training image from docker/Dockerfile.
#
#   docker/build.sh                                   CPU image on the local base (docker/build_base.sh makes it)
#   docker/build.sh --base IMAGE [--tag TAG]          CPU image on another base, e.g. an AWS PyTorch CPU image
#   docker/build.sh --gpu --base IMAGE [--tag TAG]    GPU image on an AWS PyTorch GPU image (untested here)
#   docker/build.sh --torch-index URL ...             where torch comes from ('' for PyPI)
#   docker/build.sh ... -- --no-cache                 anything after -- goes to `docker build`
#   docker/build.sh --context-only DIR                prepare the build context in DIR and stop (no Docker needed)
#
# The build context is prepared in a temporary folder: the project's files (in a git checkout: the tracked ones and
# the untracked ones git does not ignore, so no runs/, .venv or caches), the Dockerfile, and pip/ with this machine's
# pip settings for the build: its http(s) index URLs, its CA bundle (registries behind a TLS-inspecting proxy need
# it) and a local torch wheel of the pinned version for the base's Python, when pip's find-links has one. pip/ stays
# in the build stage: none of it reaches the image. torch and Ray are pinned as setup.py pins them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
variant=cpu
base=""
tag=""
torch_index=""
torch_index_set=0
context_only=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --gpu) variant=gpu; shift ;;
        --base) base="${2:?--base needs an image}"; shift 2 ;;
        --tag) tag="${2:?--tag needs a name}"; shift 2 ;;
        --torch-index) torch_index="${2?--torch-index needs a URL (or '')}"; torch_index_set=1; shift 2 ;;
        --context-only) context_only="${2:?--context-only needs a folder}"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ $variant == gpu && -z $base ]]; then
    echo "error: --gpu needs --base, an AWS PyTorch GPU training image (docker/README.md lists them)" >&2
    exit 2
fi
base="${base:-battlesnake-rl-base:bookworm}"
tag="${tag:-battlesnake-rl:$variant}"
if [[ $torch_index_set == 0 ]]; then
    # CPU: PyTorch's CPU index (PyPI's Linux torch is the CUDA build). GPU: PyPI's CUDA build.
    if [[ $variant == cpu ]]; then torch_index=https://download.pytorch.org/whl/cpu; fi
fi
pin() {  # the version setup.py pins for requirement $1 (e.g. torch, ray[rllib])
    local version
    version="$(grep -o "\"${1//[/\\[}==[0-9][0-9.]*\"" "$root/setup.py" | head -1 | sed 's/.*==\([0-9.]*\)"/\1/')"
    if [[ -z $version ]]; then
        echo "error: setup.py pins no version of $1" >&2
        exit 1
    fi
    echo "$version"
}
torch_version="$(pin torch)"
ray_version="$(pin 'ray[rllib]')"

if [[ -n $context_only ]]; then
    ctx="$context_only"
    mkdir -p "$ctx"
else
    docker image inspect "$base" >/dev/null 2>&1 || docker pull "$base" >/dev/null || {
        echo "error: base image $base is neither present nor pullable (CI makes it with docker/build_base.sh)" >&2
        exit 1
    }
    ctx="$(mktemp -d /tmp/battlesnake-rl-context.XXXXXX)"
    trap 'rm -rf "$ctx"' EXIT
fi

# ------------------------------------------------------------------ the project's files
project_files() {  # NUL-separated paths relative to $root: git's view of the checkout, else everything but outputs
    if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$root" ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
            if [[ -f $root/$file ]]; then printf '%s\0' "$file"; fi  # tracked files deleted since are skipped
        done
    else
        (cd "$root" && find . -type f -not -path './.git/*' -not -path './.venv/*' -not -path './runs/*' \
            -not -path '*/__pycache__/*' -not -path '*.egg-info/*' -print0)
    fi
}
mkdir -p "$ctx/project" "$ctx/pip/wheels"
project_files | (cd "$root" && tar -c --null -T -) | tar -x -C "$ctx/project"
cp "$root/docker/Dockerfile" "$ctx/Dockerfile"

# ------------------------------------------------------------------ this machine's pip settings, for the build only
pip_setting() {  # the values of every pip setting named $1 (from `pip config list` and PIP_* variables), one a line
    local env_name
    env_name="PIP_$(tr 'a-z-' 'A-Z_' <<<"$1")"
    { python3 -m pip config list 2>/dev/null | sed -n "s/^[^.]*\.$1='\(.*\)'$/\1/p"; printenv "$env_name" || true; } \
        | tr ' ' '\n' | sed '/^$/d' | awk '!seen[$0]++'
}
{
    echo "[global]"
    echo "disable-pip-version-check = true"
    echo "timeout = 180"
    # This machine's file:// indexes are not visible inside the build; http(s) ones are.
    index="$(pip_setting index-url | grep -E '^https?://' | head -1 || true)"
    if [[ -n $index ]]; then echo "index-url = $index"; fi
    extra="$(pip_setting extra-index-url | grep -E '^https?://' | tr '\n' ' ' || true)"
    if [[ -n ${extra// } ]]; then echo "extra-index-url = $extra"; fi
    cert="$(pip_setting cert | head -1 || true)"
    cert="${cert:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
    if [[ -f $cert ]]; then
        cp "$cert" "$ctx/pip/ca.crt"
        echo "cert = /tmp/pip/ca.crt"
    fi
    echo "find-links = /tmp/pip/wheels"
} > "$ctx/pip/pip.conf"
if [[ -n $context_only ]]; then
    echo "build context: $ctx"
    exit 0
fi

# A local torch wheel of the pinned version for the base's Python spares the download (and, on this project's
# machines, the unreachable PyTorch index). CPU only: a GPU torch comes from an index.
if [[ $variant == cpu ]]; then
    py_tag="$(docker run --rm --entrypoint python3 "$base" \
        -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
    for dir in $(pip_setting find-links); do
        wheel="$(ls "${dir#file://}"/torch-"$torch_version"+cpu-"$py_tag"-*manylinux*x86_64.whl 2>/dev/null | head -1 \
            || true)"
        if [[ -n $wheel ]]; then
            cp "$wheel" "$ctx/pip/wheels/"
            echo "torch: local wheel $(basename "$wheel")"
            if [[ $torch_index_set == 0 ]]; then torch_index=""; fi  # the wheel is all the build needs
            break
        fi
    done
fi

# ------------------------------------------------------------------ build
echo "building $tag ($variant) on $base: torch $torch_version, ray $ray_version"
previous="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
docker build -f "$ctx/Dockerfile" -t "$tag" \
    --build-arg BASE_IMAGE="$base" \
    --build-arg VARIANT="$variant" \
    --build-arg TORCH_INDEX_URL="$torch_index" \
    --build-arg TORCH_VERSION="$torch_version" \
    --build-arg RAY_VERSION="$ray_version" \
    "$@" "$ctx"
# The image this build replaced, now untagged, would only take disk space.
if [[ -n $previous && $previous != "$(docker image inspect -f '{{.Id}}' "$tag")" ]]; then
    docker rmi "$previous" >/dev/null 2>&1 || true
fi
echo "image $tag: built ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
