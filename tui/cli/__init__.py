"""pgpt.tui.cli: the `pgpt-tui` command line: argument parsing and the headless subcommands."""
