"""A busy pgpt-serve asked again: its 503 says when to come back (Retry-After), and the app and the
CLI wait that long and ask again (PGPT_SERVER_RETRIES times) before they say it is busy; a burst of
questions on a shared server failed at once (t71)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from remote_support import client_env, client_settings, occupied, served  # noqa: F401 (a fixture)
from test_app import SIZE, status, turns, wait_until

from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.tui.chat.app import ChatApp
from serve_support import RunningServer

pytestmark = pytest.mark.slow  # a server subprocess

REJECTED = "pgpt:requests_rejected_total"


def refused_once_more(served: RunningServer, before: float) -> None:
    """Wait until the server has refused one more request as busy than ``before``."""
    deadline = time.monotonic() + 60
    while served.metric(REJECTED) <= before:
        assert time.monotonic() < deadline, "the client was never refused"
        time.sleep(0.05)


def test_the_cli_asks_a_busy_server_again_after_the_wait_it_asks_for(served: RunningServer, tmp_path: Path) -> None:
    settings = client_settings(served, tmp_path, retries=5)
    before = served.metric(REJECTED)
    with occupied(served):
        chat = subprocess.Popen([sys.executable, "-m", "pgpt.tui.cli.main", "chat", "Hi", "--max-tokens", "4"],
                                env={**client_env(settings), "PGPT_SERVER_RETRIES": "5"}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        refused_once_more(served, before)  # refused while the slot is taken, then it is freed
    out, err = chat.communicate(timeout=120)
    assert chat.returncode == 0 and out.strip() and "Server busy" not in err, (out, err)
    assert served.metric(REJECTED) - before <= 5


async def test_the_app_says_it_waits_for_a_busy_server_then_answers(served: RunningServer, tmp_path: Path) -> None:
    app = ChatApp(client_settings(served, tmp_path, retries=5), SamplingOptions(max_new_tokens=6))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        with occupied(served):
            await pilot.press(*"When does the ferry leave?", "enter")
            await wait_until(pilot, lambda: status(app).endswith(" · busy: retry in 1 s…"), timeout=60)
        await wait_until(pilot, lambda: not app.answering, timeout=120)
        reply = turns(app)[1]
        assert reply.kind == "assistant" and reply.text and not reply.mark.startswith("(failed"), reply.mark


def test_the_waits_double_from_the_server_s_retry_after() -> None:
    """3 tries of the server's 1 s gave up after 4 s beside answers of 8-19 s (t78): the waits double,
    from the server's Retry-After up to 10 s, and the last refusal is said."""
    from pgpt.runtime.errors import ServerBusyError
    from pgpt.runtime.remote.client import RemoteStream

    class Clock:  # the cancel event's wait, timed instead of waited
        def __init__(self) -> None:
            self.waits: list[float] = []

        def wait(self, seconds: float) -> bool:
            self.waits.append(seconds)
            return False

    stream, clock, states = RemoteStream.__new__(RemoteStream), Clock(), []
    stream.on_state, stream._cancel, stream._retries, stream._waits = states.append, clock, 5, 0
    busy = ServerBusyError("busy", retry_after_s=1)
    assert [stream._waited_busy(busy) for _ in range(6)] == [True] * 5 + [False]
    assert clock.waits == [1, 2, 4, 8, 10] and states == ["busy 1", "busy 2", "busy 4", "busy 8", "busy 10"]
    stream._retries, stream._waits, clock.waits = 1, 0, []
    assert stream._waited_busy(ServerBusyError("busy", retry_after_s=3)) and clock.waits == [3]  # never shorter


def test_an_upload_s_wait_for_a_busy_server_counts_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar said "sending it again in 8 s" for all 8 seconds (t81): it says the seconds left."""
    from pgpt.runtime.errors import ServerBusyError
    from pgpt.runtime.remote import client
    from pgpt.runtime.remote.progress import server_step

    slept: list[float] = []
    monkeypatch.setattr(client.time, "sleep", slept.append)
    answers = iter([ServerBusyError("busy", retry_after_s=3), {"data": [{"doc_id": "d1"}]}])

    def request(*args: object, **kwargs: object) -> object:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    engine = client.RemoteEngine.__new__(client.RemoteEngine)
    engine.retries, engine._http, engine._request = 2, None, request  # no server: its progress polls are skipped
    (tmp_path / "a.txt").write_text("text")
    said: list[str] = []
    assert engine.upload(tmp_path / "a.txt", "default", on_progress=lambda p: said.append(server_step(p))) == {
        "doc_id": "d1"}
    assert said == [f"the server is busy: sending it again in {n} s" for n in (3, 2, 1)] and slept == [1, 1, 1]


def test_an_upload_refused_by_a_full_upload_queue_is_sent_again(served: RunningServer, tmp_path: Path) -> None:
    """`ingest --server` failed every file at once on a full upload queue, though the server said when
    to come back, and the refusals were not counted as rejected (t80): it sends each again, as `ask` asks."""
    import random
    import threading

    words = "harbour ferry lighthouse keeper ticket island museum parrot budget printer".split()
    rng = random.Random(7)
    big = tmp_path / "big.txt"  # a few seconds of embedding: the server's one upload turn is taken meanwhile
    big.write_text("\n\n".join(" ".join(rng.choice(words) for _ in range(120)) + "." for _ in range(500)))

    def hold() -> None:
        with served.http() as client:
            client.post("/v1/ingest/file", files={"file": ("big.txt", big.read_bytes())}, data={"collection": "bulk"},
                        timeout=300)

    holder = threading.Thread(target=hold)
    before = served.metric(REJECTED)
    holder.start()
    deadline = time.monotonic() + 60
    while served.metric("pgpt:jobs_running", 'kind="uploads"') < 1:
        assert time.monotonic() < deadline, "the big upload never started"
        time.sleep(0.05)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "note.txt").write_text("The island museum opens at nine.\n")
    settings = client_settings(served, tmp_path, retries=8)
    sent = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "ingest", str(tmp_path / "docs"), "--collection",
                           "retry"], env={**client_env(settings), "PGPT_SERVER_RETRIES": "8"}, text=True,
                          capture_output=True, timeout=300)
    holder.join(timeout=300)
    assert sent.returncode == 0 and "1 added" in sent.stdout, (sent.stdout, sent.stderr)
    assert served.metric(REJECTED) > before  # refused at least once while the big one was indexed
