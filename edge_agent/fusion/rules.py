"""Fusion rule tables: versioned, stored in the bundle as rules/fusion-<runtime>-<version>-t<threads>-<level>.json.

A table belongs to one device + runtime + version + threads + optimization level (RunSettings). `fused` is the
runtime's evidence where there is some, the timing test otherwise; `disagreement` says when the two differ. Since
version 2 it also holds the device's layout rules and conversion timings (edge_agent.fusion.layout).
"""

import os
import re
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from pydantic import BaseModel, Field

from edge_agent.bundle.schema import DEVICE_SETTING_KEYS, RunSettings
from edge_agent.fusion.layout import LayoutRules

RULES_DIR = "rules"
RULES_SCHEMA_VERSION = 2  # 2: layout rules
SUPPORTED_RULES_VERSIONS = (1, 2)
RULES_FORMAT = "edge-agent-fusion-rules"


class FusionRule(BaseModel):
    case: str
    classes: List[str]  # op classes of the chain, producer first
    fused: bool
    timing_fused: Optional[bool] = None
    evidence_fused: Optional[bool] = None
    disagreement: bool = False
    parts_median_ns: List[float] = Field(default_factory=list)  # each op alone
    whole_median_ns: Optional[float] = None
    overhead_median_ns: Optional[float] = None  # a call with no work, subtracted from every time in the test
    savings_ratio: Optional[float] = None  # (sum of parts - whole) / min part, overhead removed; fused when > alpha
    evidence_source: Optional[str] = None
    evidence_kernels: List[str] = Field(default_factory=list)
    evidence_detail: List[str] = Field(default_factory=list)
    error: Optional[str] = None


class RuleTable(BaseModel):
    format: str = RULES_FORMAT
    schema_version: int = RULES_SCHEMA_VERSION
    settings: RunSettings
    fingerprint: Dict[str, object] = Field(default_factory=dict)
    alpha: float
    created_utc: str
    rules: List[FusionRule]
    layout: Optional[LayoutRules] = None  # which kernels run on a blocked layout (fusion.layout); None: not probed

    def absorbed(self) -> FrozenSet[Tuple[str, str]]:
        """(head class, class) pairs where the head's kernel takes the other op in: a fused chain h+x+y gives
        (h, x) and (h, y). Only chains without a second consumer teach this (the multi-consumer case is a check)."""
        pairs = set()
        for rule in self.rules:
            if rule.fused and "|" not in rule.case and len(rule.classes) >= 2:
                head = rule.classes[0]
                pairs.update((head, other) for other in rule.classes[1:])
        return frozenset(pairs)


def table_filename(settings: RunSettings) -> str:
    raw = "fusion-{}-{}-t{}-{}.json".format(settings.runtime, settings.runtime_version, settings.threads,
                                            settings.level())
    return re.sub(r"[^A-Za-z0-9._+-]", "_", raw)


def save_table(bundle_dir: str, table: RuleTable) -> str:
    from edge_agent.bundle.files import atomic_write

    directory = os.path.join(bundle_dir, RULES_DIR)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, table_filename(table.settings))
    atomic_write(path, table.model_dump_json(indent=1), overwrite=True)
    return path


def load_table(path: str) -> RuleTable:
    from edge_agent.bundle.files import read_versioned_json

    return read_versioned_json(path, RULES_FORMAT, SUPPORTED_RULES_VERSIONS, RuleTable, "a fusion rule table")


def load_tables(bundle_dir: str) -> List[RuleTable]:
    directory = os.path.join(bundle_dir, RULES_DIR)
    if not os.path.isdir(directory):
        return []
    return [load_table(os.path.join(directory, name)) for name in sorted(os.listdir(directory))
            if name.startswith("fusion-") and name.endswith(".json")]


def table_for(bundle_dirs: Sequence[str], settings: Dict[str, object]) -> Optional[RuleTable]:
    """The first of the bundles' rule tables measured under these device settings (DEVICE_SETTING_KEYS, as a dict),
    or None."""
    for bundle_dir in bundle_dirs:
        for table in load_tables(bundle_dir):
            if all(getattr(table.settings, key) == settings.get(key) for key in DEVICE_SETTING_KEYS):
                return table
    return None
