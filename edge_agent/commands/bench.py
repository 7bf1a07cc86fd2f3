"""`edge-agent bench MODEL.onnx` — one model through the full protocol, appended to a bundle."""

import os

import click

from edge_agent.bundle.schema import KIND_MODEL, KIND_REFERENCE, STATUS_FAILED, STATUS_OK
from edge_agent.commands.measuring import measurement_options, measuring_session, stored_item
from edge_agent.errors import EXIT_INVALID, AgentError
from edge_agent.onnx_io import load_model, parse_input_shapes


@click.command()
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(dir_okay=False))
@click.option("--reference", "reference_path", type=click.Path(dir_okay=False), default=None,
              help="Reference model interleaved with MODEL in every window; the record gets a drift-free ratio.")
@click.option("--out", default="edge-agent-bundle", show_default=True, type=click.Path(file_okay=False),
              help="Bundle directory (created, or appended to).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=D1,D2,..",
              help="Fix a dynamic input's shape (repeatable).")
@click.option("--again", is_flag=True,
              help="Measure even if the bundle already has a valid record of this model under the same settings.")
@measurement_options
def bench(model_path, reference_path, out, input_shapes, again, **options):
    """Measure MODEL.onnx and append its record to the bundle at --out.

    Re-running the same command on the same bundle shows the valid record it already has (resume); --again measures
    anew and appends a second record."""
    from rich.console import Console

    shapes = parse_input_shapes(list(input_shapes))
    model = load_model(model_path, shapes)
    reference = load_model(reference_path) if reference_path else None
    with measuring_session(out, options) as session:
        item = stored_item(session.bundle, model, model.sha256, KIND_MODEL, name=os.path.basename(model_path))
        reference_item = None
        if reference is not None:
            reference_item = stored_item(session.bundle, reference, reference.sha256, KIND_REFERENCE,
                                         name=os.path.basename(reference_path))
        from edge_agent.measure.runner import measure_item, valid_records
        from edge_agent.report import record_table

        done = valid_records(session.bundle.records().records, session.settings,
                             reference_item.ref.item_id if reference_item else None)
        title = "edge-agent bench → {}".format(out)
        if item.ref.item_id in done and not again:
            record = done[item.ref.item_id]
            title += " (already measured; --again to measure anew)"
        else:
            record = measure_item(session, item, reference_item)
    Console().print(record_table(record, title=title))
    if record.status == STATUS_FAILED:
        raise AgentError(record.error or "measurement failed")
    return 0 if record.status == STATUS_OK else EXIT_INVALID

