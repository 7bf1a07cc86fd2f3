"""What a layout conversion costs on the device, timed the way fusions are (edge_agent.fusion.detect).

A blocked 1x1 conv measured alone converts its input into the blocked layout and its output back; two of them
chained keep the tensor between them blocked. So, call overheads removed,
    T(conv) + T(conv) - T(conv -> conv) = 2 conversions of the tensor between them,
with every time a ratio to the chain interleaved in the same windows. A few tensor sizes give the cost per
conversion and per element (LayoutRules.cost_ns).
"""

from typing import List

from edge_agent.fusion.layout import ConversionCost, LayoutRules

SIZES = ((16, 16), (16, 32), (32, 32), (32, 56), (64, 56))  # (channels, height = width): 4k to 200k elements


def measure_conversion_costs(detector, overhead_path: str, layout: LayoutRules) -> List[ConversionCost]:
    """Timings for the sizes whose conv the runtime blocks and reads through a conversion (none: nothing to time)."""
    costs = []
    for channels, hw in SIZES:
        if not layout.is_blocked("conv", channels) or layout.reads_plain("conv", channels):
            continue
        label = "layout-{}x{}".format(channels, hw)
        chain = detector.save(conv_chain(channels, hw, 2), label, "chain")
        single = detector.save(conv_chain(channels, hw, 1), label, "single")
        timing = detector.time_parts(chain, [single], overhead_path)
        if isinstance(timing, str):
            continue  # a size that fails to run leaves the fit to the others
        costs.append(ConversionCost(channels=channels, hw=hw, elements=channels * hw * hw,
                                    single_ratio=timing.part_ratios[0], overhead_ratio=timing.overhead_ratio,
                                    chain_median_ns=timing.whole_median_ns))
    return costs


def conv_chain(channels: int, hw: int, length: int):
    from kernels.builder import GraphBuilder

    builder = GraphBuilder((1, channels, hw, hw), seed=0, name="layout-chain-{}".format(length))
    x = builder.input
    for _ in range(length):
        x = builder.conv(x, channels, kernel=1, bn=False, act="relu")
    return builder.build([x])
