"""The package version (a neutral module: the CLI and the server report it)."""

__version__ = "0.1.0"
