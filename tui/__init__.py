"""pgpt.tui: the Textual app and the `pgpt-tui` command line."""
