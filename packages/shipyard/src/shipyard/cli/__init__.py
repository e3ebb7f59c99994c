"""The ``shipyard`` command line (typer), noun-verb: ``shipyard runs list``.

:func:`main` is the console script. It checks for the ``cli`` extra before importing typer, so
a light install (``pip install shipyard``) prints one line saying what to install and exits 1.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Console-script entry point: the CLI, or one line naming the extra it needs."""
    from shipyard.extras import install_hint, missing_modules

    missing = missing_modules("cli")
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        sys.stderr.write(
            f"error: the shipyard command needs the 'cli' extra ({', '.join(missing)} {verb} "
            f"not installed): {install_hint('cli')}; 'shipyard[all]' runs the engine too\n"
        )
        raise SystemExit(1)
    from shipyard.cli.main import main as run

    run()
