"""The acceptance helpers' check of who holds a port (``acceptance_support.listens``): a server
of a test running beside another must not pass for that test's own (see ``free_port``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from acceptance_support import listens


def test_listens_names_the_process_that_holds_the_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        assert not listens(os.getpid(), port)  # bound, not listening yet
        sock.listen()
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert listens(os.getpid(), port)
            assert not listens(other.pid, port)
        finally:
            other.kill()
            other.wait()
    assert not listens(os.getpid(), port)  # closed
