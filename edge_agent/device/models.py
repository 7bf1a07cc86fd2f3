"""Data models for device state. Units live in field names; a sensor that is absent is None, never an error."""

from typing import List, Optional

from pydantic import BaseModel, ConfigDict

SNAPSHOT_SCHEMA_VERSION = 1


class DeviceSnapshot(BaseModel):
    """What can change the speed of a measurement, read just before and just after each item."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = SNAPSHOT_SCHEMA_VERSION
    monotonic_ns: int
    cpu_cur_freq_khz: List[Optional[int]] = []
    # Raspberry Pi firmware clock (`vcgencmd measure_clock arm`); scaling_cur_freq hides firmware throttling there.
    arm_clock_hz: Optional[int] = None
    max_temp_mc: Optional[int] = None
    # Raspberry Pi `vcgencmd get_throttled` raw value; bits 0-3 now, 16-19 since boot.
    throttled_bits: Optional[int] = None
    load_avg_1m: Optional[float] = None
    swap_used_bytes: Optional[int] = None
    # The temperature at which this board starts to slow down (None when unknown); compare_snapshots needs it.
    throttle_temp_mc: Optional[int] = None
