#!/usr/bin/env bash
# An aarch64 board we can run anywhere: an arm64 Debian 12 root (the base of Raspberry Pi OS) run under qemu-user
# through binfmt_misc. Root only. Timing under emulation means nothing; installing, running both runtimes, writing
# and packing bundles on aarch64 does (docs/arm64-board.md).
#
#   arm64-root.sh host            install qemu-user-static, debootstrap, binfmt-support, openssh-client if missing;
#                                 register aarch64
#   arm64-root.sh build           build the cached base root, or reuse it; prints its path
#   arm64-root.sh board DIR       a fresh writable board at DIR: a copy of the base root with this checkout in
#                                 /opt/edge-latency, the host's DNS and CA bundle
#   arm64-root.sh run DIR CMD...  run CMD in the board at DIR, in its own mount and PID namespaces: nothing it
#                                 mounted and nothing it started outlives it, however it ends
#
# Exit 77: this machine cannot run the board (not root, binfmt_misc cannot be mounted, the packages cannot be
# installed); tests skip on it. Environment: ARM64_ROOT_CACHE (default /var/cache/edge-latency/arm64-root),
# DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${ARM64_ROOT_CACHE:-/var/cache/edge-latency/arm64-root}"
PIP_CACHE="$CACHE/../arm64-pip"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
# sshd and its SFTP server: the fleet playbook drives the board over SSH.
PACKAGES=python3,python3-venv,python3-pip,ca-certificates,openssh-server,openssh-sftp-server
# Bump when the build steps change: the cache key is this recipe, not the script's text.
RECIPE="v2 $SUITE arm64 minbase $PACKAGES"
# openssh-client: Ansible's connection to the board's sshd.
HOST_PACKAGES=(qemu-user-static debootstrap binfmt-support openssh-client)
BOARD_CA=/etc/ssl/certs/host-ca-certificates.crt
BOARD_MODEL="QEMU emulated aarch64 (edge-latency fleet/arm64)"
SKIP=77

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit "${2:-1}"; }

usage() {
    sed -n '6,12s/^#  //p' "${BASH_SOURCE[0]}" >&2
    exit 1
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mounts, chroot)" "$SKIP"
}

host() {
    need_root
    local missing=() package
    for package in "${HOST_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        command -v apt-get >/dev/null || die "no apt-get here to install ${missing[*]}" "$SKIP"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
            || die "cannot install ${missing[*]} from Debian's packages" "$SKIP"
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
            || die "binfmt_misc cannot be mounted here (a container without CAP_SYS_ADMIN?)" "$SKIP"
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    fi
    # The F flag makes the kernel open qemu once, at registration: a chroot then needs no copy of it.
    grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
        || die "qemu-aarch64 is not registered with binfmt_misc (flag F needed)" "$SKIP"
    say "aarch64 binaries run here through $(sed -n 's/^interpreter //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)"
}

cache_key() {
    printf '%s\n' "$RECIPE" | sha256sum | cut -c1-16
}

# Under the cache lock: debootstrap into a partial directory, then rename, so a killed build is never reused.
build_locked() {
    local key="$1" partial="$CACHE/$1.partial"
    if [ -f "$CACHE/$key/complete" ]; then
        say "reusing the arm64 root $CACHE/$key/root"
        return 0
    fi
    rm -rf --one-file-system "$partial"
    mkdir -p "$partial"
    say "debootstrap $SUITE arm64 ($PACKAGES) from $MIRROR: a few minutes"
    # In namespaces of its own: the /proc debootstrap mounts in the root and the package scripts it runs end with
    # it, also when it is killed.
    unshare --mount --propagation private --pid --fork --kill-child -- debootstrap --arch=arm64 --variant=minbase --include="$PACKAGES" \
        "$SUITE" "$partial/root" "$MIRROR" > "$partial/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $partial/debootstrap.log"
    rm -f "$partial/root/var/cache/apt/archives/"*.deb
    printf '%s\n' "$RECIPE" > "$partial/complete"
    find "$CACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$key.partial" -exec rm -rf --one-file-system {} +
    mv "$partial" "$CACHE/$key"
    say "built $CACHE/$key/root"
}

# Runs "$@" holding the cache lock: one build at a time, and no copy of a root while it is replaced.
with_cache_lock() {
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock 9
    "$@"
    exec 9>&-
}

build() {
    need_root
    local key
    key="$(cache_key)"
    with_cache_lock build_locked "$key"
    printf '%s\n' "$CACHE/$key/root"
}

copy_checkout() {
    local target="$1/opt/edge-latency"
    mkdir -p "$target"
    # The reading tar's exit 1 is "file changed as we read it": others at work in this tree while it is copied (a file
    # made or removed beside the ones copied); the board gets the tree as it was then. Anything else fails.
    tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude=./runs --exclude=__pycache__ \
        --exclude='*.egg-info' --exclude=./build --exclude=./dist --warning=no-file-changed -cf - . \
        | tar -C "$target" -xf - \
        || [ "${PIPESTATUS[0]}:${PIPESTATUS[1]}" = 1:0 ] || die "cannot copy $REPO into the board"
}

board() {
    need_root
    local dest="${1:?board needs a directory}" base key
    [ ! -e "$dest" ] || die "$dest exists; a board is made fresh (remove it first)"
    key="$(cache_key)"
    base="$CACHE/$key/root"
    with_cache_lock build_locked "$key"
    mkdir -p "$(dirname "$dest")"
    with_cache_lock cp -a --reflink=auto "$base" "$dest"
    # Removed first: cp would follow a symlink there out of the board onto the host's own file.
    rm -f "$dest/etc/resolv.conf" "$dest$BOARD_CA" "$dest/etc/pip.conf"
    cp -L /etc/resolv.conf "$dest/etc/resolv.conf"
    # The host's CA bundle: a TLS proxy may sign for PyPI.
    cp -L "$(host_ca)" "$dest$BOARD_CA"
    board_pip_conf > "$dest/etc/pip.conf"
    copy_checkout "$dest"
    say "board ready at $dest (checkout in /opt/edge-latency)"
    printf '%s\n' "$dest"
}

host_ca() {
    local candidate
    for candidate in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
        if [ -n "$candidate" ] && [ -f "$candidate" ]; then echo "$candidate"; return 0; fi
    done
    die "no CA bundle found on the host (PIP_CERT, SSL_CERT_FILE, /etc/ssl/certs/ca-certificates.crt)"
}

# The environment of a command in the board: a clean one, the host's CA bundle and proxy settings.
board_env() {
    local name
    printf '%s\n' HOME=/root LANG=C.UTF-8 TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        "SSL_CERT_FILE=$BOARD_CA" "REQUESTS_CA_BUNDLE=$BOARD_CA"
    for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        if [ -n "${!name:-}" ]; then printf '%s=%s\n' "$name" "${!name}"; fi
    done
}

# The board's /etc/pip.conf: pip there reaches PyPI the way the host's does, also in an SSH session (Ansible), which
# run's environment does not reach. The host's find-links folders and file:// indexes are host paths, left out.
board_pip_conf() {
    local url extra=()
    printf '[global]\ncert = %s\ndisable-pip-version-check = true\nroot-user-action = ignore\n' "$BOARD_CA"
    if [ -n "${https_proxy:-${HTTPS_PROXY:-}}" ]; then printf 'proxy = %s\n' "${https_proxy:-${HTTPS_PROXY:-}}"; fi
    if [ -n "${PIP_DEFAULT_TIMEOUT:-}" ]; then printf 'timeout = %s\n' "$PIP_DEFAULT_TIMEOUT"; fi
    if [ -n "${PIP_TRUSTED_HOST:-}" ]; then printf 'trusted-host = %s\n' "$PIP_TRUSTED_HOST"; fi
    case "${PIP_INDEX_URL:-}" in http://*|https://*) printf 'index-url = %s\n' "$PIP_INDEX_URL" ;; esac
    for url in ${PIP_EXTRA_INDEX_URL:-}; do
        case "$url" in http://*|https://*) extra+=("$url") ;; esac
    done
    if [ ${#extra[@]} -gt 0 ]; then printf 'extra-index-url = %s\n' "${extra[*]}"; fi
}

run() {
    need_root
    local root="${1:?run needs a board directory}"
    shift
    [ $# -gt 0 ] || die "run needs a command"
    [ -x "$root/usr/bin/python3" ] || die "$root is not a board made by '$0 board'"
    root="$(cd "$root" && pwd)"
    mkdir -p "$PIP_CACHE" "$root/root/.cache/pip"
    local env_lines=()
    mapfile -t env_lines < <(board_env)
    # A PID namespace of its own: the board's /proc lists its processes only (the agent's check looks there for
    # other agents), and when CMD, its PID 1, ends, or unshare is killed, every process it left is killed too.
    # exec: killing this script's process is killing unshare.
    exec unshare --mount --propagation private --pid --fork --kill-child -- \
        /bin/bash "${BASH_SOURCE[0]}" _chroot "$root" "${env_lines[@]}" "$@"
}

# Inside run's namespaces: its mounts end with it. Only the device nodes a program needs, not the host's /dev:
# nothing in the board can reach the host's disks.
chroot_in_namespace() {
    local root="$1" node
    shift
    mount -t proc proc "$root/proc"
    mount -t sysfs -o ro sysfs "$root/sys" 2>/dev/null || mount --rbind -o ro /sys "$root/sys"
    mount -t tmpfs -o mode=755,nosuid dev "$root/dev"
    for node in null zero full random urandom tty; do
        touch "$root/dev/$node"
        mount --bind "/dev/$node" "$root/dev/$node"
    done
    mkdir -p "$root/dev/shm" "$root/dev/pts"
    mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
    ln -s /proc/self/fd "$root/dev/fd"
    mount --bind "$PIP_CACHE" "$root/root/.cache/pip"
    board_view "$root"
    exec chroot "$root" /usr/bin/env -i "$@"
}

# What programs in the board read about their machine. qemu-user answers uname with aarch64 but leaves the host's
# /proc/cpuinfo and kernel.arch: onnxruntime's CPU probe dies on an x86 /proc/cpuinfo (SIGSEGV on import), and the
# agent would file the board's bundles under the host's x86 device. So every host CPU shows as a Cortex-A72 (a
# Pi 4's), kernel.arch as aarch64, and a device-tree model names the board as emulated: its bundles never pass
# for a real board's.
board_view() {
    local root="$1" view="$1/run/arm64-board" cpu
    mount -t tmpfs -o mode=755,nosuid,nodev run "$root/run"
    mkdir -p "$view"
    for ((cpu = 0; cpu < $(getconf _NPROCESSORS_CONF); cpu++)); do
        printf 'processor\t: %d\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n' "$cpu"
        printf 'CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done > "$view/cpuinfo"
    mount --bind "$view/cpuinfo" "$root/proc/cpuinfo"
    if [ -e "$root/proc/sys/kernel/arch" ]; then
        printf 'aarch64\n' > "$view/arch"
        mount --bind "$view/arch" "$root/proc/sys/kernel/arch"
    fi
    mount -t tmpfs -o mode=755,nosuid,nodev firmware "$root/sys/firmware"
    mkdir -p "$root/sys/firmware/devicetree/base"
    printf '%s\0' "$BOARD_MODEL" > "$root/sys/firmware/devicetree/base/model"
}

case "${1:-}" in
    host) host ;;
    build) build ;;
    board) shift; board "$@" ;;
    run) shift; run "$@" ;;
    _chroot) shift; chroot_in_namespace "$@" ;;
    *) usage ;;
esac
