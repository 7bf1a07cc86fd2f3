#!/usr/bin/env bash
# Set up a Raspberry Pi 4/5 running Raspberry Pi OS 64-bit to measure with edge-agent. Idempotent: run it again
# at any time. --dry-run prints every step without doing it. On another machine it installs the generic agent.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=setup_common.sh
. "$REPO/setup_common.sh"
parse_args "$@"

model="$(read_root proc/device-tree/model)"
arch="$(board_arch)"
on_board=0
if [[ "$model" == "Raspberry Pi"* ]]; then
    [ "$arch" = aarch64 ] || die "$model runs a $arch OS: MNN and onnxruntime ship aarch64 wheels only; flash Raspberry Pi OS 64-bit"
    on_board=1
    say "board: $model ($arch), OS: $(os_field PRETTY_NAME)"
    case "$(os_field VERSION_ID)" in
        11|12|13) ;;
        *) note "tested on Raspberry Pi OS 11/12 (bullseye/bookworm); continuing" ;;
    esac
else
    say "this is not a Raspberry Pi (${model:-no device-tree model}, $arch): installing the generic agent into the venv"
fi

check_python
if [ "$on_board" -eq 1 ]; then
    install_apt_packages python3-venv python3-pip tmux
else
    say "skipping system packages (not a Raspberry Pi)"
fi
make_venv
# The optional agent-sampling extra (scikit-learn) speeds up `profile --kernels`; setup_common.sh prints how.
install_agent agent

if [ "$on_board" -eq 1 ]; then
    say "before measuring"
    note "governor now: $(read_root sys/devices/system/cpu/cpufreq/policy0/scaling_governor) (Raspberry Pi OS default: ondemand);"
    note "  'sudo $VENV/bin/edge-agent tune' sets performance with min = max; 'edge-agent reset' puts it back"
    note "cooling: the firmware throttles near 80 degC; use a heatsink with a fan (Pi 5: the Active Cooler)"
    note "power: the official 5.1 V 3 A supply (Pi 5: 5 V 5 A); under-voltage slows the clock silently and"
    note "  'edge-agent check' reports it (vcgencmd get_throttled)"
    note "storage: results are fsynced per record; avoid other heavy SD-card writes while profiling"
fi
final_check
next_steps
