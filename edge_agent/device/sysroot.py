"""One root path for every /proc, /sys and /etc read and every board tool, so tests can point the agent at a
fixture tree that mirrors a real board. A file or tool that is missing or fails reads as None, never an error."""

import contextlib
import fnmatch
import os
import re
import shutil
import signal
import subprocess
from typing import List, Optional, Sequence

# Where boards keep their tools: Raspberry Pi OS (vcgencmd in usr/bin, opt/vc/bin on old releases),
# L4T (nvpmodel in usr/sbin, jetson_clocks and tegrastats in usr/bin).
TOOL_DIRS = ("usr/bin", "usr/sbin", "bin", "sbin", "usr/local/bin", "opt/vc/bin")
TOOL_TIMEOUT_S = 3.0


def natural_key(text: str) -> List[object]:
    """Sort thermal_zone10 after thermal_zone2."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


class SysRoot:
    def __init__(self, root: str = "/"):
        self.root = os.path.abspath(root)

    def __repr__(self) -> str:
        return "SysRoot({!r})".format(self.root)

    @property
    def is_live(self) -> bool:
        """True when this is the running system rather than a fixture tree."""
        return self.root == "/"

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel.lstrip("/"))

    def exists(self, rel: str) -> bool:
        return os.path.exists(self.path(rel))

    def read_text(self, rel: str) -> Optional[str]:
        try:
            with open(self.path(rel), "r", encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None

    def read_str(self, rel: str) -> Optional[str]:
        """The file's text stripped of whitespace and the NUL that device-tree strings end with."""
        text = self.read_text(rel)
        if text is None:
            return None
        text = text.strip().strip("\x00").strip()
        return text or None

    def read_int(self, rel: str, base: int = 10) -> Optional[int]:
        text = self.read_str(rel)
        if text is None:
            return None
        try:
            return int(text, base)
        except ValueError:
            return None

    def listdir(self, rel: str) -> List[str]:
        try:
            return sorted(os.listdir(self.path(rel)), key=natural_key)
        except OSError:
            return []

    def glob(self, rel_dir: str, pattern: str) -> List[str]:
        """Entries of rel_dir matching pattern, as root-relative paths in natural order."""
        return [os.path.join(rel_dir, name) for name in self.listdir(rel_dir) if fnmatch.fnmatch(name, pattern)]

    def write_text(self, rel: str, value: str) -> None:
        """Write a sysfs attribute. Errors propagate: a failed write during tuning must not pass silently."""
        with open(self.path(rel), "w", encoding="utf-8") as handle:
            handle.write(value)

    def tool(self, name: str) -> Optional[str]:
        for directory in TOOL_DIRS:
            candidate = self.path(os.path.join(directory, name))
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        return shutil.which(name) if self.is_live else None

    def run_tool(self, name: str, args: Sequence[str] = (), timeout_s: float = TOOL_TIMEOUT_S) -> Optional[str]:
        """stdout of a board tool, or None when it is missing, fails, or does not answer in time."""
        executable = self.tool(name)
        if executable is None:
            return None
        try:
            done = subprocess.run([executable] + list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  stdin=subprocess.DEVNULL, timeout=timeout_s, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0:
            return None
        return done.stdout.decode("utf-8", errors="replace")

    def first_line(self, name: str, args: Sequence[str] = (), timeout_s: float = TOOL_TIMEOUT_S) -> Optional[str]:
        """First line a streaming tool (tegrastats) prints, then stop it and everything it started."""
        executable = self.tool(name)
        if executable is None:
            return None
        try:
            proc = subprocess.Popen([executable] + list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            return None
        try:
            return _read_line(proc, timeout_s)
        finally:
            _stop_group(proc)


def _read_line(proc: "subprocess.Popen", timeout_s: float) -> Optional[str]:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return None
    line = proc.stdout.readline().decode("utf-8", errors="replace").strip()
    return line or None


def _stop_group(proc: "subprocess.Popen") -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    proc.stdout.close()
