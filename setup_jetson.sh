#!/usr/bin/env bash
# Set up an NVIDIA Jetson (Xavier NX / Orin, JetPack 5 or 6) to measure with edge-agent. Idempotent; --dry-run
# prints every step without doing it. On another machine it installs the generic agent.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=setup_common.sh
. "$REPO/setup_common.sh"
parse_args "$@"

model="$(read_root proc/device-tree/model)"
release="$(read_root etc/nv_tegra_release | head -n 1)"
arch="$(board_arch)"
on_board=0
if [ -n "$release" ] && [ "$arch" = aarch64 ]; then
    on_board=1
    say "board: ${model:-unknown Jetson}, L4T: $release"
    say "OS: $(os_field PRETTY_NAME) (JetPack 5 is Ubuntu 20.04 with Python 3.8, JetPack 6 Ubuntu 22.04 with 3.10)"
else
    say "this is not a Jetson (no /etc/nv_tegra_release, $arch): installing the generic agent into the venv"
fi

check_python
if [ "$on_board" -eq 1 ]; then
    install_apt_packages python3-venv python3-pip tmux
else
    say "skipping system packages (not a Jetson)"
fi
make_venv

extras=agent
if [ "$on_board" -eq 1 ]; then
    say "jetson-stats (jtop) adds live power and clock readings; it is AGPL-3.0 and runs a root service."
    note "edge-agent works without it (it reads sysfs, nvpmodel and tegrastats)."
    if ask "Install jetson-stats and its root service?"; then extras=agent,jetson; fi
fi
# The optional agent-sampling extra (scikit-learn) speeds up `profile --kernels`; setup_common.sh prints how.
install_agent "$extras"
if [ "$extras" = agent,jetson ]; then
    as_root "$VENV/bin/jtop" --install-service
    note "log out and in again so your user can reach the jtop service"
fi

if [ "$on_board" -eq 1 ]; then
    nvpmodel="$(root_tool nvpmodel)"
    mode="unknown"
    if [ -n "$nvpmodel" ]; then mode="$("$nvpmodel" -q 2>/dev/null | sed -n 's/^NV Power Mode: *//p' | head -n 1)"; fi
    say "before measuring"
    note "power mode now: ${mode:-unknown}. The mode is part of the device: pick one ('sudo nvpmodel -m N')"
    note "  and keep it for every measurement of this board"
    note "'sudo $VENV/bin/edge-agent tune' runs 'jetson_clocks --store' then 'jetson_clocks' and sets the"
    note "  performance governor; 'edge-agent reset' restores exactly the stored clocks"
    note "cooling: keep the fan on (jetson_clocks runs it at full speed); throttling starts near the passive trip"
    note "power: the developer kit's own supply; a weak one browns out under load and resets the board"
fi
final_check
next_steps
