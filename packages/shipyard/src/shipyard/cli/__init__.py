"""The ``shipyard`` command line (typer), noun-verb: ``shipyard runs list``."""
