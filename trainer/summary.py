"""Per-device summary of a dataset (`trainer devices`)."""

from dataclasses import dataclass
from typing import List, Optional

from edge_agent.errors import InputError
from trainer.dataset import Dataset
from trainer.examples import reference_latency_ms


@dataclass(frozen=True)
class DeviceSummary:
    device: str
    runtime: Optional[str]
    threads: Optional[int]
    opt_level: Optional[str]
    rows: int
    valid: int
    reference_ms: Optional[float]


def device_summaries(dataset: Dataset) -> List[DeviceSummary]:
    rows = dataset.rows(columns=["device", "runtime", "threads", "opt_level", "valid", "item_kind", "latency_ms",
                                 "reference_latency_ms"])
    out = []
    for device in sorted({r["device"] for r in rows}):
        mine = [r for r in rows if r["device"] == device]
        try:
            reference: Optional[float] = reference_latency_ms(mine, device)
        except InputError:
            reference = None
        first = mine[0]
        out.append(DeviceSummary(device, first["runtime"], first["threads"], first["opt_level"], len(mine),
                                 sum(1 for r in mine if r["valid"]), reference))
    return out
