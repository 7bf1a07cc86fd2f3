"""Build the ONNX graphs of the real-phone CNN tables (../shared/data/qed): every `model` of
tflite_cnn_real_e2e.csv and torch_cnn_real_e2e.csv, built by pytorchcv 0.0.74 with random weights (fixed seed, no
download), exported at 1x3x224x224 (torch classic exporter, opset 13, BN folded) and slimmed by onnxslim, one
`<name>.onnx` per model in a cache folder. The tables give latency but no graphs; predictors need the graphs.

Resumable: a model whose .onnx exists is not exported again, and each file is written to a temporary name and moved
into place, so a kill never leaves a torn file. Every model is then checked: FLOPs counted from the graph against the
tables' FLOPS/flops, 4 x params against `size`, onnxruntime (CPU) creates a session, trainer.encoding.encode_model
works, and every Conv has known shapes. One model's failure is a one-line reason in the report; the run goes on.

  .venv/bin/python benchmarks/build_qed_models.py [--out runs/qed-models] [--only resnet18 --only ...]
      [--tolerance 0.05] [--no-check]

Writes OUT/report.json (per model: onnx sha256, FLOPs counted two ways, the tables' FLOPs, relative differences,
params, export seconds, check results, failure reason). Needs the `bench` extra (pytorchcv without its torchvision
dependency, onnxslim): see docs/qed-models.md. Exit code 1 only if no model could be built.

FLOPs compared with the tables: 2 x MACs of Conv/ConvTranspose/Gemm/MatMul (bias adds left out), since the tables
count multiply-adds (resnet18: 3.63e9). kernels.analysis.model_flops (all ops: bias, activations, element-wise,
pools) is reported too, and a mismatch says when it is the closer of the two (element-wise work counted by a table).
"""

import argparse
import ast
import csv
import hashlib
import importlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")  # a shared 2-core machine: before torch / onnxruntime load
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QED = os.path.join(os.path.dirname(REPO), "shared", "data", "qed")
TABLES = {"tflite": ("tflite_cnn_real_e2e.csv", "FLOPS"), "torch": ("torch_cnn_real_e2e.csv", "flops")}
SEED = 0
INPUT_SHAPE = (1, 3, 224, 224)
_MAC_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}


def read_tables(folder: str):
    """name -> {"tflite": (flops, size), "torch": (flops, size)} (a runtime is absent when its table lacks the
    model), in the order the names first appear."""
    models = {}
    for runtime, (filename, flops_column) in TABLES.items():
        with open(os.path.join(folder, filename), newline="") as handle:
            for row in csv.DictReader(handle):
                models.setdefault(row["model"], {})[runtime] = (float(row[flops_column]), float(row["size"]))
    return models


def constructor_index():
    """pytorchcv name -> (module, function), read from model_provider.py's source rather than imported: importing it
    imports every model module, one of which (propainter_rfc) needs torchvision, which does not load beside the CPU
    torch. Each model's own module is imported on demand instead."""
    spec = importlib.util.find_spec("pytorchcv")
    if spec is None:
        raise SystemExit("error: pytorchcv is not installed (pip install --no-deps pytorchcv==0.0.74)")
    path = os.path.join(spec.submodule_search_locations[0], "model_provider.py")
    with open(path) as handle:
        tree = ast.parse(handle.read())
    module_of = {}
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("models."):
            module_of.update({alias.asname or alias.name: (node.module, alias.name) for alias in node.names})
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_models" for t in node.targets):
            names = {k.value: v.id for k, v in zip(node.value.keys, node.value.values)
                     if isinstance(k, ast.Constant) and isinstance(v, ast.Name)}
    return {name: module_of[function] for name, function in names.items() if function in module_of}


def build_network(name: str, index):
    """The pytorchcv network with seeded random weights, in eval mode."""
    import torch

    if name not in index:
        raise ValueError("pytorchcv 0.0.74 has no model {!r}".format(name))
    module, function = index[name]
    constructor = getattr(importlib.import_module("pytorchcv." + module), function)
    torch.manual_seed(SEED)
    return constructor(pretrained=False).eval()


def export_onnx(net):
    """The network as a slimmed ONNX model. onnxslim folds the shape arithmetic of the run-time "same" padding of
    the efficientnet_edge_*_b models into constants (without it shape inference sees no Conv shapes) and is cheap,
    so every model gets it."""
    import onnx
    import onnxslim
    import torch

    buffer = io.BytesIO()
    torch.manual_seed(SEED)
    example = torch.randn(*INPUT_SHAPE)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, example, buffer, dynamo=False, opset_version=13, input_names=["input"],
                          output_names=["output"])
    return onnxslim.slim(onnx.load_from_string(buffer.getvalue()))


def save_atomically(model, path: str) -> None:
    """Write next to the target and move into place: a kill leaves either the old state or the whole file."""
    import onnx

    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".onnx")
    os.close(handle)
    try:
        onnx.save(model, temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return "{}: {}".format(type(error).__name__, text[0][:200] if text else "")


def export_one(name: str, index, out: str, entry: dict) -> None:
    """Export one model unless its file exists; record the time or the reason it failed."""
    path = os.path.join(out, name + ".onnx")
    if os.path.exists(path):
        return
    start = time.perf_counter()
    try:
        save_atomically(export_onnx(build_network(name, index)), path)
    except Exception as error:  # noqa: BLE001 - one model's failure is reported and the others go on
        entry["failure"] = "export: " + one_line(error)
        print("{:<28} FAILED {}".format(name, entry["failure"]), flush=True)
        return
    entry["export_seconds"] = round(time.perf_counter() - start, 2)
    entry.pop("failure", None)
    print("{:<28} exported in {:.1f} s".format(name, entry["export_seconds"]), flush=True)


def mac_flops(infos) -> int:
    """2 x MACs of Conv/ConvTranspose/Gemm/MatMul: analysis' count less the one add per output element that a bias
    adds (analysis.py's convention), to compare with the tables, which count multiply-adds."""
    from kernels.analysis import numel

    total = 0
    for info in infos:
        if info.op_type in _MAC_OPS:
            bias = info.op_type != "MatMul" and len(info.in_shapes) > 2 and bool(info.in_shapes[2])
            total += info.flops - (numel(info.out_shapes[0]) if bias and info.out_shapes else 0)
    return total


def relative(ours: float, theirs: float):
    return round(ours / theirs - 1, 4) if theirs else None


def measure(model, tables: dict) -> dict:
    """FLOPs and params of the graph against the tables' columns."""
    from kernels.analysis import analyze, model_params

    infos = analyze(model)
    facts = {"flops_mac": mac_flops(infos), "flops_all": sum(i.flops for i in infos), "params": model_params(model),
             "nodes": len(infos), "conv_unknown_shapes": sum(1 for i in infos if i.op_type == "Conv" and (
                 i.cin <= 0 or i.in_hw == (0, 0)))}
    for runtime, (flops, size) in tables.items():
        facts["table_flops_" + runtime] = flops
        facts["flops_rel_diff_" + runtime] = relative(facts["flops_mac"], flops)
        facts["flops_all_rel_diff_" + runtime] = relative(facts["flops_all"], flops)
        facts["table_size_" + runtime] = size
        facts["size_rel_diff_" + runtime] = relative(4 * facts["params"], size)
    return facts


def runtime_checks(path: str, model) -> list:
    """Problems found by onnxruntime (CPU session creation) and the trainer's graph encoder; empty when none."""
    import onnxruntime as ort

    from trainer.encoding import encode_model

    problems = []
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - reported per model
        problems.append("onnxruntime: " + one_line(error))
    try:
        encode_model(model)
    except Exception as error:  # noqa: BLE001 - reported per model
        problems.append("encode_model: " + one_line(error))
    return problems


def check_one(name: str, out: str, tables: dict, entry: dict) -> None:
    """Fill the report entry of an exported model: sha256, FLOPs/params against the tables, runtime checks."""
    import onnx

    path = os.path.join(out, name + ".onnx")
    if not os.path.exists(path):
        for key in [k for k in entry if k not in ("failure", "export_seconds")]:
            del entry[key]  # stale facts of a file that is gone
        entry.setdefault("failure", "export: no file")
        return
    entry.pop("failure", None)
    with open(path, "rb") as handle:
        entry["onnx_sha256"] = hashlib.sha256(handle.read()).hexdigest()
    try:
        model = onnx.load(path)
        entry.update(measure(model, tables))
        entry["check_problems"] = runtime_checks(path, model)
    except Exception as error:  # noqa: BLE001 - reported per model
        entry["check_problems"] = ["check: " + one_line(error)]
    if entry.get("conv_unknown_shapes"):
        entry["check_problems"].append("{} Conv nodes with unknown shapes".format(entry["conv_unknown_shapes"]))
    for problem in entry["check_problems"]:
        print("{:<28} CHECK {}".format(name, problem), flush=True)


def load_report(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return json.load(handle).get("models", {})


def write_report(path: str, entries: dict) -> None:
    import onnx
    import onnxslim
    import torch

    versions = {"torch": torch.__version__, "onnx": onnx.__version__, "onnxslim": onnxslim.__version__,
                "pytorchcv": _pytorchcv_version()}
    document = {"seed": SEED, "input_shape": list(INPUT_SHAPE), "opset": 13, "versions": versions,
                "flops_mac": "2 x MACs of Conv/ConvTranspose/Gemm/MatMul, bias adds left out (compared with tables)",
                "flops_all": "kernels.analysis.model_flops: every op by analysis.py's conventions",
                "models": entries}
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
    with os.fdopen(handle, "w") as stream:
        json.dump(document, stream, indent=1, sort_keys=True)
    os.replace(temporary, path)


def _pytorchcv_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytorchcv")
    except PackageNotFoundError:
        return "unknown"


def mismatch_reason(entry: dict, runtime: str) -> str:
    """What can be told from the counts alone about a FLOPs mismatch."""
    mac, every = entry.get("flops_rel_diff_" + runtime), entry.get("flops_all_rel_diff_" + runtime)
    if every is not None and abs(every) < abs(mac):
        return "the all-ops count is {:+.1%} off: the table counts element-wise work too".format(every)
    if mac < 0:
        return "the table counts more than the graph's multiply-adds, and more than all its ops"
    return "the graph has more multiply-adds than the table counts"


def print_mismatches(entries: dict, tolerance: float) -> None:
    print("\nFLOPs differing by more than {:.0%} from a table (ours: 2 x MACs of Conv/Gemm/MatMul):".format(tolerance))
    print("| model | runtime | ours | table | diff | all-ops diff | reason |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    count = 0
    for name, entry in entries.items():
        for runtime in TABLES:
            diff = entry.get("flops_rel_diff_" + runtime)
            if diff is not None and abs(diff) > tolerance:
                count += 1
                print("| {} | {} | {:.4g} | {:.4g} | {:+.1%} | {:+.1%} | {} |".format(
                    name, runtime, entry["flops_mac"], entry["table_flops_" + runtime], diff,
                    entry["flops_all_rel_diff_" + runtime], mismatch_reason(entry, runtime)))
    print("{} mismatches".format(count))


def summarize(entries: dict, seconds: float) -> int:
    """Print the counts and the failures; the number of models built."""
    built = [n for n, e in entries.items() if "onnx_sha256" in e]
    failed = {n: e["failure"] for n, e in entries.items() if "onnx_sha256" not in e}
    flagged = {n: e["check_problems"] for n, e in entries.items() if e.get("check_problems")}
    sizes = [abs(e[k]) for e in entries.values() for k in e if k.startswith("size_rel_diff_") and e[k] is not None]
    print("\n{} of {} models built, {} failed, {} with check problems; 4 x params vs size: worst {:.1%}; {:.0f} s"
          .format(len(built), len(entries), len(failed), len(flagged), max(sizes, default=0), seconds))
    for name, reason in failed.items():
        print("  failed {}: {}".format(name, reason))
    for name, problems in flagged.items():
        print("  check {}: {}".format(name, "; ".join(problems)))
    return len(built)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(REPO, "runs", "qed-models"), help="cache folder")
    parser.add_argument("--tables", default=QED, help="folder of the two qed CSV tables")
    parser.add_argument("--only", action="append", help="build just this model (repeatable)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="FLOPs mismatch threshold (fraction)")
    parser.add_argument("--no-check", action="store_true", help="export only; leave the report as it is")
    args = parser.parse_args()
    start = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    tables = read_tables(args.tables)
    names = args.only or list(tables)
    unknown = [n for n in names if n not in tables]
    if unknown:
        raise SystemExit("error: not in the qed tables: {}".format(", ".join(unknown)))
    os.makedirs(args.out, exist_ok=True)
    report_path = os.path.join(args.out, "report.json")
    entries = load_report(report_path)
    index = constructor_index()
    for name in names:
        export_one(name, index, args.out, entries.setdefault(name, {}))
        write_report(report_path, entries)  # export times survive a kill
    if args.no_check:
        return
    for name in names:
        check_one(name, args.out, tables[name], entries[name])
    write_report(report_path, entries)
    print_mismatches({n: entries[n] for n in names}, args.tolerance)
    if summarize({n: entries[n] for n in names}, time.perf_counter() - start) == 0:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
