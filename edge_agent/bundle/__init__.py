"""Result bundles: the unit that travels from a board to the workstation."""
