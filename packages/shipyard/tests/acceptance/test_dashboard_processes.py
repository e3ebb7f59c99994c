"""The dashboard as users start it, real processes on free ports: ``shipyard dev`` prints its
address and serves it without a login (development, loopback); ``shipyard server`` sends a
browser to the login, and the server's secret key signs it in."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import httpx
import pytest
from acceptance_support import Child, Procs, Project, free_port, wait_until

pytestmark = [pytest.mark.timeout(120)]


def _up(port: int, child: Child) -> bool:
    if not child.alive():
        raise AssertionError(f"{child.name} exited early:\n{child.output()[-4000:]}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


async def test_dev_prints_an_open_dashboard(project: Project, procs: Procs) -> None:
    port = free_port()
    dev = project.spawn_shipyard(
        "dev",
        "--port",
        str(port),
        "--no-reload",
        name="dev",
        SHIPYARD_API_PORT="0",
        SHIPYARD_FUNCTIONS_PORT="0",
    )
    await wait_until(lambda: _up(port, dev), timeout=60, what="dev up", context=dev.output)
    await wait_until(
        lambda: "dashboard" in dev.output(), timeout=30, what="the banner", context=dev.output
    )
    line = next(x for x in dev.output().splitlines() if "dashboard" in x)
    assert f"http://127.0.0.1:{port}/dashboard" in line and "open" in line
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        page = await http.get("/dashboard/runs")
        assert page.status_code == 200 and "<h1>Runs</h1>" in page.text


async def test_server_asks_for_the_key(project: Project, procs: Procs) -> None:
    port = free_port()
    key = "dashboard-acceptance-key-" + "k" * 20
    server = project.spawn_shipyard(
        "server", "--port", str(port), name="server", SHIPYARD_SECRET_KEY=key
    )
    await wait_until(lambda: _up(port, server), timeout=60, what="server up", context=server.output)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        page = await http.get("/dashboard/runs")
        assert page.status_code == 303 and "/dashboard/login" in page.headers["location"]
        form = await http.get("/dashboard/login")
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert nonce is not None
        done = await http.post("/dashboard/login", data={"nonce": nonce.group(1), "key": key})
        assert done.status_code == 303
        assert (await http.get("/dashboard/runs")).status_code == 200
    assert key not in server.output()
