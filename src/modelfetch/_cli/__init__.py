"""The `modelfetch` command: argument parsing and output (`main`), progress bars, the demo."""
