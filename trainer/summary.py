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
    """One device's rows at a time, only the columns used, counted in Arrow: memory follows the largest device, and
    only its reference rows become Python objects (all its rows only when it has no valid reference row)."""
    import pyarrow.compute as pc

    out = []
    for device in dataset.devices():
        table = dataset.arrow([device], columns=["device", "runtime", "threads", "opt_level", "valid", "item_kind",
                                                 "latency_ms", "reference_latency_ms"])
        first = table.slice(0, 1).to_pylist()[0]
        out.append(DeviceSummary(device, first["runtime"], first["threads"], first["opt_level"], table.num_rows,
                                 int(pc.sum(pc.cast(table["valid"], "int64")).as_py() or 0),
                                 _reference(table, device)))
    return out


def _reference(table, device: str) -> Optional[float]:
    import pyarrow.compute as pc

    # Standalone reference measurements decide when there are valid ones; the other rows only otherwise.
    for rows in (table.filter(pc.equal(table["item_kind"], "reference")), table):
        try:
            return reference_latency_ms(rows.to_pylist(), device)
        except InputError:
            continue
    return None
