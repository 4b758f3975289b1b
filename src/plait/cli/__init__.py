"""The `plait` command: one module per command group, each command thin over the library."""
