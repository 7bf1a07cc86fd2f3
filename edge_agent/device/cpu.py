"""CPU cores, their models and their cpufreq policies, read from /proc/cpuinfo and /sys/devices/system/cpu."""

from typing import Dict, List, Optional, Tuple

from edge_agent.device.fingerprint_models import Cluster, CoreInfo
from edge_agent.device.sysroot import SysRoot

CPU_DIR = "sys/devices/system/cpu"
CPUFREQ_DIR = CPU_DIR + "/cpufreq"

# arm64 /proc/cpuinfo names no model, only (implementer, part) from MIDR_EL1; names from the vendors' TRMs.
ARM_PARTS: Dict[Tuple[str, str], str] = {
    ("0x41", "0xd03"): "Cortex-A53",
    ("0x41", "0xd04"): "Cortex-A35",
    ("0x41", "0xd05"): "Cortex-A55",
    ("0x41", "0xd07"): "Cortex-A57",
    ("0x41", "0xd08"): "Cortex-A72",
    ("0x41", "0xd09"): "Cortex-A73",
    ("0x41", "0xd0a"): "Cortex-A75",
    ("0x41", "0xd0b"): "Cortex-A76",
    ("0x41", "0xd0d"): "Cortex-A77",
    ("0x41", "0xd41"): "Cortex-A78",
    ("0x41", "0xd42"): "Cortex-A78AE",
    ("0x41", "0xd44"): "Cortex-X1",
    ("0x41", "0xd46"): "Cortex-A510",
    ("0x41", "0xd47"): "Cortex-A710",
    ("0x4e", "0x003"): "Denver 2",
    ("0x4e", "0x004"): "Carmel",
}


def parse_cpuinfo(text: Optional[str]) -> Dict[int, Dict[str, str]]:
    """processor number -> its key/value block."""
    blocks: Dict[int, Dict[str, str]] = {}
    current: Dict[str, str] = {}
    for line in (text or "").splitlines() + [""]:
        if not line.strip():
            if "processor" in current and current["processor"].isdigit():
                blocks[int(current["processor"])] = current
            current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    return blocks


def core_model(block: Dict[str, str]) -> Optional[str]:
    # L4T kernels print a generic "ARMv8 Processor rev 0 (v8l)" model name: the part number says more.
    key = (block.get("CPU implementer", "").lower(), block.get("CPU part", "").lower())
    if key in ARM_PARTS:
        return ARM_PARTS[key]
    if block.get("model name"):
        return block["model name"]
    if key == ("", ""):
        return None
    return "arm implementer {} part {}".format(*key)


def parse_cpu_list(text: Optional[str]) -> List[int]:
    """Kernel CPU lists: "0-3", "0,2-5" or the space-separated form of related_cpus."""
    cpus: List[int] = []
    for part in (text or "").replace(",", " ").split():
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            continue
        cpus.extend(range(int(first), int(last or first) + 1))
    return sorted(set(cpus))


def policy_of_cpu(root: SysRoot) -> Dict[int, str]:
    mapping: Dict[int, str] = {}
    for policy in root.glob(CPUFREQ_DIR, "policy*"):
        cpus = parse_cpu_list(root.read_str(policy + "/related_cpus") or root.read_str(policy + "/affected_cpus"))
        for cpu in cpus:
            mapping[cpu] = policy
    return mapping


def policies(root: SysRoot) -> List[str]:
    """Root-relative paths of the cpufreq policy directories (empty where there is no cpufreq)."""
    return root.glob(CPUFREQ_DIR, "policy*")


def cpu_numbers(root: SysRoot, cpuinfo: Dict[int, Dict[str, str]]) -> List[int]:
    return parse_cpu_list(root.read_str(CPU_DIR + "/present")) or sorted(cpuinfo)


def read_cores(root: SysRoot) -> List[CoreInfo]:
    cpuinfo = parse_cpuinfo(root.read_text("proc/cpuinfo"))
    online = set(parse_cpu_list(root.read_str(CPU_DIR + "/online")))
    models = {cpu: core_model(block) for cpu, block in cpuinfo.items()}
    known = {model for model in models.values() if model}
    # Offline cores are missing from /proc/cpuinfo; on a board with one core type they are that type.
    default_model = known.pop() if len(known) == 1 else None
    owner = policy_of_cpu(root)
    cores = []
    for cpu in cpu_numbers(root, cpuinfo):
        policy = owner.get(cpu)
        cores.append(CoreInfo(
            cpu=cpu,
            online=(cpu in online) if online else None,
            model=models.get(cpu) or default_model,
            policy=policy.rsplit("/", 1)[-1] if policy else None,
            **_policy_values(root, policy),
        ))
    return cores


def _policy_values(root: SysRoot, policy: Optional[str]) -> Dict[str, object]:
    if policy is None:
        return {}
    return {
        "governor": root.read_str(policy + "/scaling_governor"),
        "min_freq_khz": root.read_int(policy + "/scaling_min_freq"),
        "max_freq_khz": root.read_int(policy + "/scaling_max_freq"),
        "cur_freq_khz": root.read_int(policy + "/scaling_cur_freq"),
        "hw_min_freq_khz": root.read_int(policy + "/cpuinfo_min_freq"),
        "hw_max_freq_khz": root.read_int(policy + "/cpuinfo_max_freq"),
    }


def clusters(cores: List[CoreInfo]) -> List[Cluster]:
    groups: Dict[Tuple[Optional[str], Optional[int]], List[CoreInfo]] = {}
    for core in cores:
        groups.setdefault((core.model, core.hw_max_freq_khz), []).append(core)
    result = []
    for (model, max_khz), members in groups.items():
        domains = sorted({core.policy for core in members if core.policy})
        result.append(Cluster(cpus=[core.cpu for core in members], model=model, hw_max_freq_khz=max_khz,
                              freq_domains=domains))
    return sorted(result, key=lambda cluster: cluster.cpus[0])


def cur_freqs_khz(root: SysRoot) -> List[Optional[int]]:
    """Current frequency of each cpufreq policy, in policy order (cheap: one read per policy)."""
    return [root.read_int(policy + "/scaling_cur_freq") for policy in policies(root)]
