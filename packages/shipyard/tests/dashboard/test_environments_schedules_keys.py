"""The dashboard across environments (a key of another environment signs in to it; the
switcher moves between the ones a session holds; a revoked key's session ends), the
schedules page and the keys page, over HTTP through a real uvicorn server."""

from __future__ import annotations

import re
from typing import Any

import httpx

from shipyard import schedules
from shipyard.engine.engine import Engine
from shipyard.server.app import create_app
from shipyard.testing.eventually import eventually

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


async def login(http: httpx.AsyncClient, key: str, next_page: str = "/dashboard/runs") -> int:
    """Post the login form with ``key``; the status (303 when signed in)."""
    form = await http.get("/dashboard/login", params={"environment": "x"})
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    done = await http.post(
        "/dashboard/login", data={"nonce": nonce.group(1), "key": key, "next": next_page}
    )
    return done.status_code


async def csrf_of(http: httpx.AsyncClient, path: str = "/dashboard/runs") -> str:
    page = await http.get(path)
    found = CSRF.search(page.text)
    assert page.status_code == 200 and found is not None, page.status_code
    return found.group(1)


async def test_a_key_of_another_environment_shows_that_environment(
    engine: Engine, serve: Any
) -> None:
    staging = await engine.create_key("staging", name="dash")
    staging_engine = engine.for_environment("staging", await _signing(engine, "staging"))
    theirs = await staging_engine.trigger("only-in-staging", {}, {})
    ours = await engine.trigger("only-in-development", {}, {})
    url = await serve(create_app(engine))
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        assert await login(http, staging.key) == 303
        page = (await http.get("/dashboard/runs")).text
        assert theirs.id in page and ours.id not in page
        assert (await http.get(f"/dashboard/runs/{ours.id}")).status_code == 404
        # The switcher lists both; development needs its key first.
        assert 'name="environment"' in page and "development (sign in)" in page
        csrf = CSRF.search(page).group(1)  # type: ignore[union-attr]
        switch = await http.post(
            "/dashboard/environment", data={"csrf": csrf, "environment": "development"}
        )
        assert (
            switch.status_code == 303
            and "/dashboard/login?environment=development" in (switch.headers["location"])
        )
        assert await login(http, engine.secret_key()) == 303
        page = (await http.get("/dashboard/runs")).text
        assert ours.id in page and theirs.id not in page
        csrf = CSRF.search(page).group(1)  # type: ignore[union-attr]
        back = await http.post(
            "/dashboard/environment",
            data={"csrf": csrf, "environment": "staging", "next": "/dashboard/runs"},
        )
        assert back.status_code == 303 and back.headers["location"] == "/dashboard/runs"
        assert theirs.id in (await http.get("/dashboard/runs")).text
        # Revoking the staging key ends its grant within seconds (this server: at once).
        await engine.revoke_key(staging.info.id)

        async def signed_out() -> bool:
            return (await http.get("/dashboard/runs")).status_code == 303

        await eventually(signed_out, timeout=15)
    await staging_engine.close()


async def _signing(engine: Engine, environment: str) -> str:
    key = await engine.signing_key_of(environment)
    assert key is not None
    return key


async def test_public_tokens_and_wrong_keys_cannot_sign_in(engine: Engine, serve: Any) -> None:
    url = await serve(create_app(engine))
    token = engine.public_token(["read:runs"])
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        assert await login(http, token) == 401
        assert await login(http, "sk_dev_" + "x" * 40) == 401
        assert (await http.get("/dashboard/runs")).status_code == 303


async def test_an_open_session_is_worth_nothing_to_a_closed_server(
    engine: Engine, serve: Any
) -> None:
    open_url = await serve(create_app(engine, dashboard_open=True))
    closed_url = await serve(create_app(engine))
    async with httpx.AsyncClient(base_url=open_url, timeout=30) as http:
        assert (await http.get("/dashboard/runs")).status_code == 200
        cookie = http.cookies["shipyard_session"]
    async with httpx.AsyncClient(base_url=closed_url, timeout=30) as http:
        http.cookies.set("shipyard_session", cookie, path="/dashboard")
        assert (await http.get("/dashboard/runs")).status_code == 303


async def test_keys_page_creates_once_and_revokes(engine: Engine, serve: Any) -> None:
    url = await serve(create_app(engine))
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        assert await login(http, engine.secret_key()) == 303
        csrf = await csrf_of(http, "/dashboard/keys")
        made = await http.post("/dashboard/keys", data={"csrf": csrf, "name": "ci"})
        assert made.status_code == 200
        key = re.search(r'id="new-key" class="code wide" readonly value="([^"]+)"', made.text)
        assert key is not None and key.group(1).startswith("sk_dev_")
        found = await engine.find_key(key.group(1))
        assert found is not None and found.name == "ci"
        listed = (await http.get("/dashboard/keys")).text
        assert found.id in listed and key.group(1) not in listed  # shown once only
        revoked = await http.post(f"/dashboard/keys/{found.id}/revoke", data={"csrf": csrf})
        assert revoked.status_code == 303
        assert await engine.find_key(key.group(1)) is None
        other = await engine.create_key("staging")
        refused = await http.post(f"/dashboard/keys/{other.info.id}/revoke", data={"csrf": csrf})
        assert refused.status_code == 404 and await engine.find_key(other.key) is not None


async def test_schedules_page_lists_creates_toggles_and_runs_now(
    engine: Engine, serve: Any, start_worker: Any
) -> None:
    @schedules.task(id="nightly", cron="0 3 * * *")
    async def nightly(payload: schedules.ScheduledPayload) -> str:
        return payload.schedule_id

    await start_worker()
    url = await serve(create_app(engine))

    async def declared() -> Any:
        return (await engine.list_schedules()).data

    found = await eventually(declared, timeout=20)
    declarative = found[0]
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        assert await login(http, engine.secret_key()) == 303
        page = await http.get("/dashboard/schedules")
        assert page.status_code == 200
        assert declarative.id in page.text and "0 3 * * *" in page.text
        assert "03:00:00 UTC" in page.text  # the next runs
        test = (await http.get("/dashboard/tasks/nightly/test")).text
        assert f"a tick of schedule {declarative.id} now" in test
        assert f"&#34;scheduleId&#34;: &#34;{declarative.id}&#34;" in test
        tasks = (await http.get("/dashboard/tasks")).text
        assert f"/dashboard/runs?schedule={declarative.id}" in tasks and "0 3 * * *" in tasks
        csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        made = await http.post(
            "/dashboard/schedules",
            data={
                "csrf": csrf,
                "task": "nightly",
                "cron": "*/15 * * * *",
                "timezone": "Europe/Paris",
                "deduplication_key": "every-quarter",
            },
        )
        assert made.status_code == 303
        imperative = next(s for s in (await engine.list_schedules()).data if s.type == "IMPERATIVE")
        assert imperative.timezone == "Europe/Paris"
        bad = await http.post(
            "/dashboard/schedules",
            data={"csrf": csrf, "task": "nightly", "cron": "nope", "deduplication_key": "k"},
        )
        assert bad.status_code == 400 and "nope" in bad.text
        off = await http.post(
            f"/dashboard/schedules/{imperative.id}/deactivate", data={"csrf": csrf}
        )
        assert off.status_code == 303
        assert not (await engine.retrieve_schedule(imperative.id)).active
        await http.post(f"/dashboard/schedules/{imperative.id}/activate", data={"csrf": csrf})
        assert (await engine.retrieve_schedule(imperative.id)).active
        ran = await http.post(f"/dashboard/schedules/{declarative.id}/run", data={"csrf": csrf})
        assert ran.status_code == 303
        run_id = ran.headers["location"].rsplit("/", 1)[1]

        async def output() -> Any:
            run = await engine.retrieve_run(run_id)
            return run.output if run.is_completed else None

        assert await eventually(output, timeout=30) == declarative.id
        # "Run now" is not a tick of the schedule: the schedule's runs do not list it.
        listed = (await http.get("/dashboard/runs", params={"schedule": declarative.id})).text
        assert run_id not in listed and "data-live" not in listed
        gone = await http.post(f"/dashboard/schedules/{imperative.id}/delete", data={"csrf": csrf})
        assert gone.status_code == 303
        kept = await http.post(f"/dashboard/schedules/{declarative.id}/delete", data={"csrf": csrf})
        assert kept.status_code == 400 and "declarative" in kept.text
