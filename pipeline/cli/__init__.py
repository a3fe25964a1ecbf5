"""The `medpipe` command line: commands (what each subcommand does), parser (their help),
stage_runner (`medpipe stage`, what `dvc repro` calls) and predict (`medpipe predict`)."""

from pipeline.cli.commands import main

__all__ = ["main"]
