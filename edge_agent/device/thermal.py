"""Thermal zones and the temperature at which a board starts to throttle."""

import re
from typing import List, Optional

from edge_agent.device.fingerprint_models import ThermalZone, TripPoint
from edge_agent.device.sysroot import SysRoot

ZONE_DIRS = ("sys/class/thermal", "sys/devices/virtual/thermal")
# Zones whose reading is not a temperature of the chip: Jetson's PMIC-Die reports a fixed 100 degC.
IGNORED_ZONE_TYPES = frozenset({"PMIC-Die"})
# Raspberry Pi firmware throttles at 80 degC whatever the kernel's trip points say (its only trip is critical).
RASPBERRY_PI_THROTTLE_MC = 80000


def zone_dirs(root: SysRoot) -> List[str]:
    for directory in ZONE_DIRS:
        zones = root.glob(directory, "thermal_zone*")
        if zones:
            return zones
    return []


def read_zones(root: SysRoot) -> List[ThermalZone]:
    return [ThermalZone(name=zone.rsplit("/", 1)[-1], type=root.read_str(zone + "/type"),
                        temp_mc=root.read_int(zone + "/temp"), trips=_trips(root, zone))
            for zone in zone_dirs(root)]


def _trips(root: SysRoot, zone: str) -> List[TripPoint]:
    trips = []
    for entry in root.glob(zone, "trip_point_*_temp"):
        index = re.sub(r"\D", "", entry.rsplit("/", 1)[-1])
        temp = root.read_int(entry)
        kind = root.read_str("{}/trip_point_{}_type".format(zone, index))
        if temp is not None and kind:
            trips.append(TripPoint(type=kind, temp_mc=temp))
    return trips


def max_temp_mc(root: SysRoot) -> Optional[int]:
    """Hottest chip sensor right now; reads only type and temp of each zone (cheap enough per item)."""
    temps = []
    for zone in zone_dirs(root):
        if root.read_str(zone + "/type") in IGNORED_ZONE_TYPES:
            continue
        temp = root.read_int(zone + "/temp")
        # Disabled sensors read 0 or negative values.
        if temp is not None and temp > 0:
            temps.append(temp)
    return max(temps) if temps else None


def throttle_temp_mc(zones: List[ThermalZone], board_model: Optional[str]) -> Optional[int]:
    """Lowest passive trip (where the kernel starts throttling); failing that the lowest hot/critical trip."""
    if board_model and board_model.startswith("Raspberry Pi"):
        return RASPBERRY_PI_THROTTLE_MC
    usable = [zone for zone in zones if zone.type not in IGNORED_ZONE_TYPES]
    for kinds in (("passive",), ("hot", "critical")):
        temps = [trip.temp_mc for zone in usable for trip in zone.trips if trip.type in kinds and trip.temp_mc > 0]
        if temps:
            return min(temps)
    return None
