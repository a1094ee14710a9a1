"""Fixtures of the server tests: a real pgpt-serve in a subprocess on a free 127.0.0.1 port,
with the session's exported models (one per test module; ``keyed_server`` requires a key).

Other modules under tests/serve (batching, hot swap) get these fixtures from pytest, and can
start servers of their own with ``serve_support.start_server`` (tests/serve_support.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pgpt.runtime.settings import Settings
from serve_support import RunningServer, start_server


@pytest.fixture(scope="module")
def served_settings(default_models: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session's models with a home of this module (answer cache, index, uploads, logs)."""
    import dataclasses

    return dataclasses.replace(default_models, home=tmp_path_factory.mktemp("serve-home"))


@pytest.fixture(scope="module")
def server(served_settings: Settings) -> Iterator[RunningServer]:
    """A running server without a key (loopback only), stopped at the end of the module."""
    running = start_server(served_settings)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def keyed_server(served_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A running server that requires an API key, with a 1 MB body cap, CORS for
    http://localhost:3000 and the extra host name gpu-box.example (its home is the module's too)."""
    key_file = tmp_path_factory.mktemp("key") / "api-key"
    key_file.write_text("pgpt-test-key-0123456789abcdef\n")
    key_file.chmod(0o600)
    running = start_server(served_settings, "--api-key-file", str(key_file), "--max-body-mb", "1",
                           "--cors-origins", "http://localhost:3000", "--allowed-hosts", "gpu-box.example",
                           key="pgpt-test-key-0123456789abcdef")
    try:
        yield running
    finally:
        running.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start a server subprocess are slow ones (they still run in CI)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents and "served_settings" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
