"""The device fingerprint: what a latency was measured on. Hardware identity and the settings that change speed;
a sensor that is absent is None ("unavailable"), never an error."""

import re
from typing import Dict, List, Optional

from pydantic import BaseModel, ConfigDict, computed_field

FINGERPRINT_SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class CoreInfo(_Frozen):
    cpu: int
    online: Optional[bool] = None
    model: Optional[str] = None
    policy: Optional[str] = None
    governor: Optional[str] = None
    min_freq_khz: Optional[int] = None
    max_freq_khz: Optional[int] = None
    cur_freq_khz: Optional[int] = None
    hw_min_freq_khz: Optional[int] = None
    hw_max_freq_khz: Optional[int] = None


class Cluster(_Frozen):
    """Identical cores (same model and hardware maximum); freq_domains are the cpufreq policies clocking them."""

    cpus: List[int]
    model: Optional[str] = None
    hw_max_freq_khz: Optional[int] = None
    freq_domains: List[str] = []


class TripPoint(_Frozen):
    # The kernel's trip type: "passive" is where throttling starts, "critical" is shutdown, "active" drives a fan.
    type: str
    temp_mc: int


class ThermalZone(_Frozen):
    name: str
    type: Optional[str] = None
    temp_mc: Optional[int] = None
    trips: List[TripPoint] = []


class MemoryInfo(_Frozen):
    total_bytes: Optional[int] = None
    available_bytes: Optional[int] = None
    swap_total_bytes: Optional[int] = None
    swap_used_bytes: Optional[int] = None


class OsInfo(_Frozen):
    pretty_name: Optional[str] = None
    id: Optional[str] = None
    version_id: Optional[str] = None


class RaspberryPiInfo(_Frozen):
    throttled_bits: Optional[int] = None
    throttled_flags: List[str] = []
    arm_clock_hz: Optional[int] = None
    temp_mc: Optional[int] = None
    under_voltage_alarm: Optional[bool] = None


class JetsonInfo(_Frozen):
    l4t_release: Optional[str] = None
    nvpmodel_name: Optional[str] = None
    nvpmodel_id: Optional[int] = None
    # True when every CPU policy and the GPU run at min == max, which is what `jetson_clocks` sets.
    jetson_clocks_active: Optional[bool] = None
    gpu_cur_freq_hz: Optional[int] = None
    gpu_min_freq_hz: Optional[int] = None
    gpu_max_freq_hz: Optional[int] = None
    emc_freq_hz: Optional[int] = None
    # Which source answered: "jtop" when its service did, otherwise "sysfs" / "tegrastats".
    source: str = "sysfs"


class Fingerprint(_Frozen):
    schema_version: int = FINGERPRINT_SCHEMA_VERSION
    board_model: Optional[str] = None
    arch: Optional[str] = None
    cpu_model: Optional[str] = None
    cores: List[CoreInfo] = []
    clusters: List[Cluster] = []
    thermal_zones: List[ThermalZone] = []
    throttle_temp_mc: Optional[int] = None
    memory: MemoryInfo = MemoryInfo()
    kernel: Optional[str] = None
    os: OsInfo = OsInfo()
    python_version: str
    runtime_versions: Dict[str, Optional[str]] = {}
    raspberry_pi: Optional[RaspberryPiInfo] = None
    jetson: Optional[JetsonInfo] = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def device_key(self) -> str:
        """Stable short name from hardware identity only (no hostname, serial or boot-time state)."""
        if self.board_model:
            return slug(self.board_model)
        return "{}-{}-{}c".format(slug(self.arch or "unknown"), slug(self.cpu_model or "unknown-cpu"),
                                  len(self.cores))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "unknown"
