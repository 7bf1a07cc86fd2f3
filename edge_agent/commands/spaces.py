"""`edge-agent spaces`: the registered model spaces."""

import json

import click

from edge_agent.commands.common import json_option


@click.command()
@json_option
def spaces(as_json: bool):
    """List the registered model spaces: version, reference model, number of subnets, description."""
    from kernels.spaces import get_space, list_spaces

    rows = []
    for name in list_spaces():
        space = get_space(name)
        reference = space.reference_spec()
        rows.append({"name": name, "version": space.version, "input_shape": list(space.input_shape),
                     "reference": space.reference_description, "reference_id": reference.id,
                     "num_choices": space.num_choices(), "description": space.description})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("space", "version", "reference model", "subnets", "description")
    for row in rows:
        count = row["num_choices"]
        table.add_row(row["name"], str(row["version"]), row["reference"],
                      "{:,}".format(count) if count < 10 ** 7 else "{:.1e}".format(count), row["description"])
    Console().print(table)
