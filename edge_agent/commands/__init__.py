"""One module per `edge-agent` command; see edge_agent.cli.COMMANDS."""
