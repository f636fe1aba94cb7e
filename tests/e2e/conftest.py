"""Browser tests of the web dashboard: a real `coinwire serve`, Debian's Chromium driven by Playwright.

The dashboard is built first (`make web`: nothing to do when the build is fresh). Every page
a test opens collects console errors and uncaught exceptions; a test fails on any of them.
Screenshots go to tests/e2e/screenshots/ (git-ignored), desktop and phone width.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient
from tests.server import ADMIN_PASSWORD, ServerProcess

pytest.importorskip("playwright", reason="playwright (the dev extra) drives the browser")
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("COINWIRE_TEST_CHROMIUM", "/usr/bin/chromium"))  # another build: its path here
SHOTS = Path(os.environ.get("COINWIRE_TEST_SHOTS", Path(__file__).resolve().parent / "screenshots"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-quic"]
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
VIEWER = ("vera", "viewer-password-1")
TRADER = ("tom", "trader-password-1")


@pytest.fixture(scope="session")
def dashboard_built() -> Path:
    """The Vite build in src/coinwire/web/dist, rebuilt by make only when a source changed.

    Every parallel worker asks for it once; the lock makes the others wait for the one that builds
    instead of two builds writing dist/ at once (and then finding it fresh)."""
    with open(ROOT / "src" / "coinwire" / "web" / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = subprocess.run(["make", "-s", "web"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"make web failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    dist = ROOT / "src" / "coinwire" / "web" / "dist"
    assert (dist / "index.html").is_file()
    return dist


def serve_with_users(folder: Path, env: dict[str, str] | None = None,
                     exchanges: list[dict[str, Any]] | None = None, config: str = "") -> Iterator[ServerProcess]:
    """A started server with the viewer and the trader the pages sign in as; stopped when the fixture ends."""
    proc = ServerProcess(folder, exchanges=exchanges, env=env, config=config)
    proc.start()
    try:
        with proc.client() as admin:
            for name, password, role in ((*VIEWER, "viewer"), (*TRADER, "trader")):
                r = admin.post("/api/v1/users", json={"username": name, "password": password, "role": role, "plan": "free"})
                assert r.status_code in (200, 201), r.text
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dashboard_built: Path) -> Iterator[ServerProcess]:
    yield from serve_with_users(Path(tmp_path_factory.mktemp("web")))


@pytest.fixture(scope="module")  # not session: Playwright's sync API keeps an event loop running in this thread
def browser() -> Iterator[Browser]:  # until it stops, and every later asyncio test would then fail to start its own
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does it), or COINWIRE_TEST_CHROMIUM=path")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


# `expect` waits as long as the pages' own calls may (the contexts' 15 s): a loaded CI machine answers a page's first
# reads in more than the library's 5 s default
expect.set_options(timeout=15_000)


class Watched:
    """A page plus the console errors and uncaught exceptions it produced."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))


def open_page(browser: Browser, server: ServerProcess, viewport: dict[str, int] = DESKTOP) -> Watched:
    context = browser.new_context(viewport=viewport, base_url=server.http)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    return Watched(context.new_page())


def sign_in(w: Watched, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    w.page.goto("/")
    w.page.get_by_label("User name").fill(username)
    w.page.get_by_label("Password").fill(password)
    w.page.get_by_role("button", name="Sign in").click()
    w.page.get_by_test_id("sign-out").wait_for()


def toggle_mask(page: Page) -> None:
    """Click the mask toggle and wait for the server to store it: the next page (or the next test's) reads it there,
    and a navigation or a closed context would otherwise abort the write still on its way."""
    with page.expect_response(lambda r: r.url.endswith("/api/v1/me/preferences") and r.request.method == "PUT"):
        page.get_by_test_id("mask-toggle").click()


def shot(w: Watched, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    w.page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def admin_page(browser: Browser, server: ServerProcess) -> Iterator[Watched]:
    w = open_page(browser, server)
    sign_in(w)
    yield w
    w.page.context.close()
    assert not w.errors, f"console errors: {w.errors}"


def api(server: ServerProcess) -> httpx.Client:
    return server.client()


def rpc_as(server: ServerProcess, token: str, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """JSON-RPC calls as the token's user, one after another, from a worker thread (Playwright's sync API owns this one's loop)."""
    async def run() -> list[Any]:
        async with RpcClient(f"{server.ws_anonymous}?access_token={token}") as rpc:
            return [await rpc.call(method, **params) for method, params in calls]

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=60)
