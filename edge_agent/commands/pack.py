"""`edge-agent pack BUNDLE_DIR`."""

import click


@click.command()
@click.argument("bundle_dir", type=click.Path(file_okay=False))
def pack(bundle_dir):
    """Write BUNDLE_DIR.tar.gz beside the bundle, with a SHA256SUMS member covering every file."""
    from edge_agent.bundle.pack import pack_bundle
    from edge_agent.bundle.store import read_records

    archive, count = pack_bundle(bundle_dir)
    torn = read_records(bundle_dir).torn_lines
    click.echo("packed {} files into {}".format(count, archive))
    if torn:
        click.echo("note: {} torn line(s) in measurements.jsonl (an interrupted write); readers skip them".format(torn),
                   err=True)
