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
    """One device's rows at a time, only the columns used: memory follows the largest device, not the dataset."""
    out = []
    for device in dataset.devices():
        mine = dataset.rows([device], columns=["device", "runtime", "threads", "opt_level", "valid", "item_kind",
                                               "latency_ms", "reference_latency_ms"])
        try:
            reference: Optional[float] = reference_latency_ms(mine, device)
        except InputError:
            reference = None
        first = mine[0]
        out.append(DeviceSummary(device, first["runtime"], first["threads"], first["opt_level"], len(mine),
                                 sum(1 for r in mine if r["valid"]), reference))
    return out
