#!/usr/bin/env bash
# Build a minimal Debian bookworm base image (Python 3.11 with venv, ca-certificates) from the Debian mirror apt already
# uses, with debootstrap + `docker import`: no image registry needed. CI builds the training image on it; users start
# from an AWS deep-learning image instead (see docker/README.md).
#
#   docker/build_base.sh [--force] [TAG]      TAG defaults to battlesnake-rl-base:bookworm
#
# Idempotent: an existing image of that tag is kept unless --force. MIRROR=http://... overrides the mirror.
set -euo pipefail

force=0
if [[ "${1:-}" == "--force" ]]; then force=1; shift; fi
tag="${1:-battlesnake-rl-base:bookworm}"
suite=bookworm

if [[ $force == 0 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag: present, kept (--force rebuilds it)"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "error: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 1
fi

# The first mirror apt lists for the suite itself (deb822 "URIs:"/"Suites:" stanzas or one-line "deb URI SUITE").
find_mirror() {
    local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    cat "${files[@]}" 2>/dev/null | awk -v s="$suite" '
        /^[[:space:]]*deb[[:space:]]/ { sub(/\[[^]]*\]/, ""); if ($3 == s) { print $2; exit } }
        /^URIs:/ { uri = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s && uri != "") { print uri; exit } }
        /^[[:space:]]*$/ { uri = "" }' || true
}
mirror="${MIRROR:-$(find_mirror)}"
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs="$(mktemp -d /tmp/battlesnake-rl-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap $suite from $mirror into $rootfs"
# minbase: apt, dpkg and essentials only. python3-venv brings ensurepip: the Dockerfile installs everything into a
# venv (Debian's python refuses system-wide pip installs, PEP 668). The compiler for the toolkit's C extension is
# installed by the Dockerfile's build stage only, so it stays out of the training image.
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$suite" "$rootfs" "$mirror" \
    > "$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# The image's own apt uses the same mirror; debootstrap leaves only the main suite listed.
echo "deb $mirror $suite main" > "$rootfs/etc/apt/sources.list"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*

tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "base image $tag: built ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
