# shellcheck shell=bash
# Steps shared by setup_rpi.sh and setup_jetson.sh. Sourced by them, never run on its own.

DRY_RUN=0
SYSROOT="/"
VENV="${EDGE_AGENT_VENV:-$HOME/edge-agent-venv}"
PYTHON="${PYTHON:-python3}"
JTOP_ANSWER=""

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Print a command (quoted so it can be pasted), then run it unless this is a dry run.
run() {
    if [ "$DRY_RUN" -eq 1 ]; then printf '[dry-run]'; else printf '+'; fi
    printf ' %q' "$@"
    printf '\n'
    if [ "$DRY_RUN" -eq 0 ]; then "$@"; fi
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then run "$@"; else run sudo "$@"; fi
}

usage() {
    cat <<USAGE
usage: $0 [--dry-run] [--venv DIR] [--python PYTHON] [--sysroot DIR] [--with-jtop | --no-jtop]
  --dry-run      print every step without doing it
  --venv DIR     virtual environment to create or reuse (default: \$EDGE_AGENT_VENV or ~/edge-agent-venv)
  --python PY    interpreter for the venv (default: \$PYTHON or python3; 3.8 or newer)
  --sysroot DIR  read the board's /proc, /sys and /etc under DIR (a fixture tree in tests)
  --with-jtop / --no-jtop   Jetson only: answer the jetson-stats question without asking
USAGE
}

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --dry-run) DRY_RUN=1 ;;
            --venv) VENV="${2:?--venv needs a directory}"; shift ;;
            --python) PYTHON="${2:?--python needs an interpreter}"; shift ;;
            --sysroot) SYSROOT="${2:?--sysroot needs a directory}"; shift ;;
            --with-jtop) JTOP_ANSWER=yes ;;
            --no-jtop) JTOP_ANSWER=no ;;
            -h|--help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
        shift
    done
}

# A file of the board, with the NUL that device-tree strings end with removed; empty when absent.
read_root() {
    if [ -r "${SYSROOT%/}/$1" ]; then tr -d '\0' < "${SYSROOT%/}/$1"; fi
}

board_arch() {
    local named
    named="$(read_root proc/sys/kernel/arch)"
    if [ -n "$named" ]; then echo "$named"; elif [ "$SYSROOT" = "/" ]; then uname -m;
    elif grep -q 'CPU implementer' "${SYSROOT%/}/proc/cpuinfo" 2>/dev/null; then echo aarch64; else uname -m; fi
}

os_field() {
    sed -n "s/^$1=//p" "${SYSROOT%/}/etc/os-release" 2>/dev/null | tr -d '"' | head -n 1
}

# A board tool under the sysroot's bin directories (and on PATH for the live system).
root_tool() {
    local dir
    for dir in usr/bin usr/sbin bin sbin; do
        if [ -x "${SYSROOT%/}/$dir/$1" ]; then echo "${SYSROOT%/}/$dir/$1"; return 0; fi
    done
    if [ "$SYSROOT" = "/" ]; then command -v "$1" || true; fi
}

check_python() {
    local version
    if ! version="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3]); sys.exit(sys.version_info < (3, 8))' 2>/dev/null)"; then
        die "$PYTHON is missing or older than 3.8 (found: ${version:-none}); pass --python"
    fi
    say "Python $version ($PYTHON)"
    if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
        note "this Python cannot create a venv yet (the python3-venv package provides it)"
    fi
}

install_apt_packages() {
    local missing=() package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$package")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "system packages already installed: $*"
        return 0
    fi
    say "installing system packages: ${missing[*]}"
    as_root apt-get update
    as_root apt-get install -y "${missing[@]}"
}

make_venv() {
    if [ -x "$VENV/bin/python" ]; then
        say "reusing the virtual environment at $VENV"
    else
        say "creating a virtual environment at $VENV"
        run "$PYTHON" -m venv "$VENV"
    fi
}

# Install this checkout with the given extras. Re-running upgrades it in place.
install_agent() {
    say "installing edge-agent [$1] from $REPO"
    # Old pips (Ubuntu 20.04 ships 20.0) do not know the manylinux_2_28 tag of current onnxruntime wheels.
    run "$VENV/bin/python" -m pip install 'pip>=21.3'
    run "$VENV/bin/python" -m pip install "${REPO}[$1]"
    say "optional: adaptive kernel sampling (profile --kernels) runs faster with scikit-learn (aarch64 wheels exist):"
    say "  $VENV/bin/python -m pip install \"${REPO}[$1,agent-sampling]\""
}

# yes/no question with "no" as the default; --with-jtop/--no-jtop answer it, a dry run or no terminal says no.
ask() {
    local answer=""
    if [ -n "$JTOP_ANSWER" ]; then answer="$JTOP_ANSWER";
    elif [ "$DRY_RUN" -eq 0 ] && [ -t 0 ]; then read -r -p "$1 [y/N] " answer; fi
    case "$answer" in y|Y|yes) return 0 ;; *) return 1 ;; esac
}

final_check() {
    local status=0 args=()
    if [ "$SYSROOT" != "/" ]; then args=(--sysroot "$SYSROOT"); fi
    run "$VENV/bin/edge-agent" --version
    if [ "$DRY_RUN" -eq 1 ]; then
        run "$VENV/bin/edge-agent" check "${args[@]}"
        return 0
    fi
    run "$VENV/bin/edge-agent" check "${args[@]}" || status=$?
    case "$status" in
        0) say "ready to measure" ;;
        2) say "installed; not ready to measure yet: fix the failures listed above, then run edge-agent check again" ;;
        *) die "edge-agent check failed (exit $status)" ;;
    esac
}

next_steps() {
    local agent="$VENV/bin/edge-agent"
    say "next steps (README: board workflow)"
    note "sudo $agent tune       -- save the clocks, then performance governor with min = max"
    note "tmux new -s profile    -- profile inside tmux so a dropped SSH connection does not stop it"
    note "$agent profile ...     -- the same command resumes after a power cut"
    note "sudo $agent reset      -- restore exactly what tune saved"
    note "$agent pack BUNDLE_DIR -- then scp BUNDLE_DIR.tar.gz to the workstation and run trainer ingest"
}
