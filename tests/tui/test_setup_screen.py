"""The Setup screen (F2) driven by Pilot at 80x24: token entry, whoami, clear, the network doctor."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static
from textual.widgets._footer import FooterKey

from fake_hub import ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN, FakeHub, dead_endpoint
from pgpt.runtime.hub.identity import PROXY_VARIABLES
from pgpt.runtime.hub.token import store_token, token_path
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from test_app import wait_until
from pgpt.tui.screens.setup import NO_TOKEN, ConfirmClear, SetupScreen

SIZE = (80, 24)
REJECTED_TOKEN = "hf_pgptCanaryRejected00000000000009999"  # the stand-in answers 401 to any unknown token
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HF_TOKEN_PATH")


@pytest.fixture(scope="module")
def whoami_hub() -> Iterator[FakeHub]:
    """The hub stand-in without repos: the Setup screen only asks whoami and pings the API."""
    with FakeHub({}) as server:
        yield server


@pytest.fixture()
def hub_env(whoami_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeHub:
    """This process's environment pointed at the stand-in, with no token and no proxy from outside."""
    for name in (*TOKEN_VARIABLES, *PROXY_VARIABLES, "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", whoami_hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)  # no .env file from the working folder
    return whoami_hub


async def open_setup(pilot: Pilot) -> SetupScreen:
    """Press F2 and wait for the first token status and doctor findings."""
    await pilot.press("f2")
    screen = pilot.app.screen
    assert isinstance(screen, SetupScreen)
    await wait_until(pilot, lambda: screen.token_status is not None and bool(screen.checks))
    return screen


def shown(screen: SetupScreen, selector: str) -> str:
    """The plain text a Static of the screen shows."""
    return str(screen.query_one(selector, Static).render())


async def test_a_valid_token_is_stored_checked_and_never_shown(settings: Settings, hub_env: FakeHub,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_setup(pilot)
        assert NO_TOKEN in shown(screen, "#token-status")
        assert app.focused is screen.query_one("#token-input", Input)
        footer = {key.description: key.region for key in screen.query(FooterKey)}
        assert {"Save", "Clear", "Check", "Chat", "Chats"} <= footer.keys()
        assert all(region.right <= SIZE[0] for region in footer.values())  # every key visible at 80 columns
        await pilot.press(*ACCEPTED_TOKEN)
        assert ACCEPTED_TOKEN not in app.export_screenshot()  # masked while typed
        await pilot.press("enter")
        assert all(ACCEPTED_TOKEN not in repr(worker) for worker in app.workers)
        await wait_until(pilot, lambda: "pgpt-tester" in shown(screen, "#token-status"))
        status = shown(screen, "#token-status")
        assert f"hf_...1234 (masked) from pgpt token file ({token_path(settings)})" in status
        assert "account  pgpt-tester (read token)" in status and "(mode 0600)" in status
        path = token_path(settings)
        assert path.read_text().strip() == ACCEPTED_TOKEN and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert screen.query_one("#token-input", Input).value == ""
        await wait_until(pilot, lambda: "pgpt-tester" in str(screen.checks.get("network", {}).get("account")))
        await app.workers.wait_for_complete()
        assert ACCEPTED_TOKEN not in app.export_screenshot()
        assert not screen.query_one("#token-warnings").display and not screen.query_one("#token-diagnosis").display
    assert ACCEPTED_TOKEN not in caplog.text
    if settings.log_file.exists():
        assert ACCEPTED_TOKEN not in settings.log_file.read_text()


async def test_hf_token_in_the_environment_overrides_the_stored_one(settings: Settings, hub_env: FakeHub,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store_token(settings, ACCEPTED_TOKEN)
    monkeypatch.setenv("HF_TOKEN", NOT_ACCEPTED_TOKEN)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_setup(pilot)
        status = shown(screen, "#token-status")
        assert "hf_...5678 (masked) from HF_TOKEN" in status and "pgpt-tester (fine-grained token" in status
        warnings = shown(screen, "#token-warnings")
        assert screen.query_one("#token-warnings").display
        assert "HF_TOKEN (environment variable) overrides the token stored by pgpt" in warnings
        for token in (ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN):
            assert token not in app.export_screenshot()


async def test_a_rejected_malformed_or_unwritable_token_is_diagnosed_inline(settings: Settings,
                                                                         hub_env: FakeHub) -> None:
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_setup(pilot)
        await pilot.press(*REJECTED_TOKEN, "enter")
        await wait_until(pilot, lambda: "rejected" in shown(screen, "#token-diagnosis"))
        diagnosis = shown(screen, "#token-diagnosis")
        assert f"The Hub at {hub_env.url} rejected the token you typed (hf_...9999)" in diagnosis
        assert "not stored" in diagnosis and "huggingface.co/settings/tokens" in diagnosis
        assert not token_path(settings).exists() and NO_TOKEN in shown(screen, "#token-status")
        assert REJECTED_TOKEN not in app.export_screenshot()

        await pilot.press(*"not a token", "ctrl+s")  # the same as Enter, from the footer
        await wait_until(pilot, lambda: "does not look like" in shown(screen, "#token-diagnosis"))
        # the mistake in plain words, without the command line's title ("Invalid setting: ...")
        diagnosis = shown(screen, "#token-diagnosis")
        assert diagnosis.startswith("That does not look like a Hugging Face token")
        assert not token_path(settings).exists()

        token_path(settings).mkdir(parents=True)  # the Hub accepts it, but the file cannot be written
        await pilot.press(*ACCEPTED_TOKEN, "enter")
        await wait_until(pilot, lambda: "System error" in shown(screen, "#token-diagnosis"))
        assert "Is a directory" in shown(screen, "#token-diagnosis") and NO_TOKEN in shown(screen, "#token-status")
        assert ACCEPTED_TOKEN not in app.export_screenshot()
        assert app.is_running and app.screen is screen


async def test_clearing_asks_first_then_removes_the_stored_token(settings: Settings, hub_env: FakeHub) -> None:
    store_token(settings, ACCEPTED_TOKEN)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_setup(pilot)
        assert "hf_...1234 (masked) from pgpt token file" in shown(screen, "#token-status")
        await pilot.press("ctrl+l")
        assert isinstance(app.screen, ConfirmClear)
        await pilot.press("n")  # keep it
        assert app.screen is screen and token_path(settings).exists()
        await pilot.press("ctrl+l", "y")
        await wait_until(pilot, lambda: NO_TOKEN in shown(screen, "#token-status"))
        assert "token removed" in shown(screen, "#token-status") and not token_path(settings).exists()
        await pilot.press("ctrl+l")  # nothing stored any more: no dialog, a plain answer
        assert app.screen is screen and "nothing to clear" in shown(screen, "#token-diagnosis")


async def test_doctor_shows_endpoint_reachability_proxies_and_folders(settings: Settings, hub_env: FakeHub,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_setup(pilot)
        findings = shown(screen, "#doctor-findings")
        assert findings.startswith("network\n") and f"endpoint: {hub_env.url}" in findings
        assert "mirror: yes" in findings and "proxies: none set" in findings  # not "True"
        assert screen.checks["network"]["hub answers"].startswith("answers (HTTP 404")  # no /api/models here
        assert f"hub cache (HF_HUB_CACHE or HF_HOME/hub): {tmp_path / 'hf' / 'hub'} (not created yet): writable" in findings
        assert "GB free" in findings

        dead = dead_endpoint()
        monkeypatch.setenv("HF_ENDPOINT", dead)
        monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@proxy.invalid:3128")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the dead endpoint is reached directly
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.checks["network"]["endpoint"] == dead)
        findings = shown(screen, "#doctor-findings")
        assert "hub answers: no, after" in findings and f"{dead} could not be reached (ConnectionError)" in findings
        assert "next step: check HF_ENDPOINT (is the mirror up, its address right?)" in findings  # beside it
        assert "HTTPS_PROXY: http://user:***@proxy.invalid:3128" in findings and "secret" not in findings
        assert "proxies: none set" not in findings

        await pilot.press(*ACCEPTED_TOKEN, "enter")  # no Hub to ask: stored, and said to be unverified
        await wait_until(pilot, lambda: "not verified" in shown(screen, "#token-status"))
        assert f"{dead} could not be reached (ConnectionError)" in shown(screen, "#token-status")
        assert token_path(settings).read_text().strip() == ACCEPTED_TOKEN
