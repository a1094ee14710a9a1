"""The Models screen (F3) driven by Pilot at 80x24 against the hub stand-in, and `pgpt-tui models --delete`."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, ProgressBar, RadioButton, Static
from textual.widgets._footer import FooterKey

from fake_hub import ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN, FakeHub
from pgpt.runtime.manifest import write_manifest
from pgpt.runtime.hub.token import token_path
from pgpt.runtime.footprint import footprint
from pgpt.runtime.models import DEFAULT_EMBEDDER, DEFAULT_LLM, find_model, set_active_model
from pgpt.runtime.user_config import read_config
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from pgpt.runtime.models import ModelInfo
from pgpt.tui.screens.models.table import ConfirmDelete, ModelTable, provider_label
from pgpt.tui.screens.models.screen import ModelsScreen
from test_app import wait_until
from support import cli_env, defaults_only

SIZE = (80, 24)
GATED = "pgpt-test/smollm2"
EXPORTED = "smollm2-fp32"
DEFAULT_CHAT = f"{DEFAULT_LLM}-int8"  # what chat falls back to with nothing chosen
DEFAULT_MODELS = (DEFAULT_EMBEDDER, f"{DEFAULT_LLM}-fp32", DEFAULT_CHAT)  # exported by conftest
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN")


@pytest.fixture()
def own_cache(settings: Settings, tmp_path: Path) -> Settings:
    """This test's own model cache: links to the shared default models, so exports and deletions stay here.

    Only the defaults: a reused shared cache (PGPT_TEST_MODEL_CACHE) may hold other tests' exports.
    """
    return defaults_only(settings, tmp_path / "model-cache")


@pytest.fixture()
def hub_env(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """The in-process client talks to the stand-in, with no token unless a test sets HF_TOKEN."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read at import time
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    return hub


async def open_models(pilot: Pilot) -> ModelsScreen:
    """F3, then wait for the first listing of the local models."""
    await pilot.press("f3")
    screen = pilot.app.screen
    assert isinstance(screen, ModelsScreen)
    await wait_until(pilot, lambda: screen.query_one(ModelTable).row_count > 0)
    return screen


def text_of(screen: ModelsScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def screen_text(pilot: Pilot) -> str:
    """Every character on the terminal, as the user sees it."""
    return "\n".join(strip.text for strip in pilot.app.screen._compositor.render_strips())


async def select_model(pilot: Pilot, screen: ModelsScreen, name: str) -> None:
    """Tab to the model list and move the cursor to ``name`` with the arrow keys."""
    table = screen.query_one(ModelTable)
    for _ in range(2):  # as the help says: this text, then the list (the type row has its own keys)
        if not isinstance(screen.focused, ModelTable):
            await pilot.press("tab")
    assert isinstance(screen.focused, ModelTable), screen.focused
    target = table.names().index(name)
    key = "down" if target > table.cursor_row else "up"
    for _ in range(abs(target - table.cursor_row)):
        await pilot.press(key)
    assert table.selected_name == name


def engine_name(app: ChatApp) -> str:
    return app.engine.model.info.name if app.engine is not None else ""


async def test_token_set_then_a_gated_repo_gets_the_cause_the_next_step_and_the_terms_url(
        own_cache: Settings, hub_env: FakeHub) -> None:
    app = ChatApp(own_cache)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        repo = screen.query_one("#repo", Input)
        assert screen.focused is repo
        await pilot.press(*"sentence", "right")  # → takes the suggestion
        assert repo.value == "sentence-transformers/all-MiniLM-L6-v2"
        await pilot.press("ctrl+u", *GATED, "enter")
        await wait_until(pilot, lambda: not screen.busy and "Gated" in text_of(screen, "#diagnosis"))
        diagnosis = text_of(screen, "#diagnosis")
        assert diagnosis.startswith(f"Gated model: no token · {GATED}")
        assert "no token is set" in diagnosis and "save it on the Setup screen (F2)" in diagnosis and "pgpt-tui token set" not in diagnosis
        assert f"Accept the terms: {hub_env.url}/{GATED}" in diagnosis
        assert "Ungated models of a similar size: HuggingFaceTB/SmolLM2-1.7B-Instruct" in diagnosis

        await pilot.press("f2", *NOT_ACCEPTED_TOKEN, "enter")  # the token, set on the Setup screen
        setup = app.screen
        await wait_until(pilot, lambda: "pgpt-tester" in str(setup.query_one("#token-status", Static).render()))
        assert token_path(own_cache).read_text().strip() == NOT_ACCEPTED_TOKEN
        await pilot.press("f3", "ctrl+r")  # back to Models: check the gated repo again
        await wait_until(pilot, lambda: not screen.busy and "terms not accepted" in text_of(screen, "#diagnosis"))
        diagnosis = text_of(screen, "#diagnosis")
        assert "(hf_...5678) is not on its access list" in diagnosis
        assert f"Accept the terms: {hub_env.url}/{GATED}" in diagnosis
        assert NOT_ACCEPTED_TOKEN not in diagnosis and NOT_ACCEPTED_TOKEN not in screen_text(pilot)

        await pilot.press("ctrl+u", *"pgpt-test/pickles", "ctrl+g")  # a failed job: said here, not in a toast too
        await wait_until(pilot, lambda: not screen.busy and "Pickle" in text_of(screen, "#diagnosis"))
        assert "Pickle weights refused: pgpt-test/pickles ships only pickle weights" in text_of(screen, "#diagnosis")
        assert text_of(screen, "#diagnosis").startswith("Failed: ")  # the headline no longer reads as running
        assert [n.title for n in app._notifications] == []
        assert not screen.query_one("#job-row").display


async def test_fp16_is_off_with_the_reason_and_the_screen_fits_80x24(own_cache: Settings) -> None:
    from pgpt.runtime.llm.session import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if not reason:
        pytest.skip("this machine has a usable GPU: fp16 is offered")
    app = ChatApp(own_cache)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        await wait_until(pilot, lambda: text_of(screen, "#dtype-note").startswith("fp16 is off"))
        assert text_of(screen, "#dtype-note") == f"fp16 is off: {reason}"
        assert screen.query_one("#dtype-fp16", RadioButton).disabled
        chosen = [screen.dtype]
        for _ in range(3):
            await pilot.press("ctrl+t")
            chosen.append(screen.dtype)
        assert chosen == ["fp32", "int8", "int4", "fp32"]  # fp16 is skipped

        table = screen.query_one(ModelTable)
        assert table.names() == list(DEFAULT_MODELS)
        shown = screen_text(pilot)
        assert f"● {DEFAULT_CHAT}  llm    int8" in shown and "top-1 " in shown and "cosine " in shown
        # size on disk and expected memory once loaded (pgpt.runtime.footprint), then the provider,
        # the last column, still inside 80 columns
        row = next(line for line in shown.splitlines() if f"● {DEFAULT_CHAT}" in line)
        memory = footprint(find_model(own_cache, DEFAULT_CHAT)).expected_bytes / 1e6
        assert f" {memory:.0f} MB " in row and row.rstrip().endswith("CPU"), row
        header = next(line for line in shown.splitlines() if line.startswith(" name "))
        assert header.split() == ["name", "kind", "dtype", "disk", "memory", "quality", "on"], header
        for focus in ("#repo", "#models"):  # the footer changes with the focus; every key stays in view
            screen.query_one(focus).focus()
            await pilot.pause()
            keys = [k for k in screen.query(FooterKey) if k.display]
            assert keys and all(k.region.right <= SIZE[0] for k in keys)
            labels = " ".join(k.description for k in keys)
            assert ("Check" in labels and "Get" in labels and "Export" in labels) if focus == "#repo" else (
                "Use" in labels and "Delete" in labels)


async def test_download_export_use_and_delete_a_gated_model(
        own_cache: Settings, hub_env: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", ACCEPTED_TOKEN)
    app = ChatApp(own_cache)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: engine_name(app) == DEFAULT_CHAT)
        screen = await open_models(pilot)
        await pilot.press(*GATED, "ctrl+g")
        await wait_until(pilot, lambda: not screen.busy and "downloaded" in text_of(screen, "#diagnosis"), 300)
        bar = screen.query_one("#job-bar", ProgressBar)
        assert bar.total and bar.progress == bar.total > 100e6  # total bytes, from the progress ticks
        assert " MB/s · ETA" in text_of(screen, "#job-total")
        assert text_of(screen, "#job-file").startswith("file ")

        assert screen.dtype == "fp32"
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: "load:" in text_of(screen, "#diagnosis"), 300)
        assert screen.query_one("#job-row").display and text_of(screen, "#job-total").startswith("stage ")
        await wait_until(pilot, lambda: "Stop" in [k.description for k in screen.query(FooterKey)])  # redrawn async
        await wait_until(pilot, lambda: not screen.busy, 900)
        lines = text_of(screen, "#diagnosis")
        for stage in ("resolve:", "load:", "export:", "validate:", "done:"):
            assert stage in lines, lines
        # a heartbeat updates its line: repeated, they pushed "resolve:" out of the last 40 on a busy machine
        shapes = [re.sub(r"\d+", "#", line) for line in lines.splitlines()]
        assert all(a != b for a, b in zip(shapes, shapes[1:])), lines
        assert "s] " in lines  # each stage line has its elapsed time
        assert f"{EXPORTED} is ready (fp32" in lines and "top-1 agreement 1" in lines and "perplexity x" in lines
        await wait_until(pilot, lambda: EXPORTED in screen.query_one(ModelTable).names())
        folder = own_cache.model_cache / EXPORTED
        assert folder.is_dir() and folder.is_symlink()  # to its first version (pgpt.runtime.versions)
        versions = own_cache.model_cache / ".versions" / EXPORTED
        assert [p.name for p in versions.iterdir() if p.is_dir()] == [folder.resolve().name]
        await wait_until(pilot, lambda: engine_name(app) == EXPORTED, 120)  # an exported LLM becomes the chat model

        exported = app.engine
        await select_model(pilot, screen, f"{DEFAULT_LLM}-fp32")
        await pilot.press("enter")
        await wait_until(pilot, lambda: engine_name(app) == f"{DEFAULT_LLM}-fp32", 120)
        assert exported is not None and exported.model.session is None  # closed: its memory went back
        await select_model(pilot, screen, EXPORTED)
        await pilot.press("enter")
        await wait_until(pilot, lambda: engine_name(app) == EXPORTED, 120)
        assert read_config(own_cache)["active_model"] == EXPORTED

        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDelete))
        dialog = app.screen  # its question, whole (on the screen it wraps with the model cache's path)
        assert dialog.active and f"It is the chat model: chat switches to {DEFAULT_CHAT}." in str(
            dialog.query_one(Static).render())
        assert f"Delete {EXPORTED}" in str(dialog.query_one(Static).render())
        await pilot.press("y")
        await wait_until(pilot, lambda: EXPORTED not in screen.query_one(ModelTable).names())
        assert isinstance(app.focused, ModelTable)  # where Delete was pressed: the dialog gave it back
        await pilot.press("f2", "f3")  # F3 itself opens on the repo field
        await wait_until(pilot, lambda: app.focused is screen.query_one("#repo", Input))
        assert not folder.exists() and not versions.exists() and "active_model" not in read_config(own_cache)
        await wait_until(pilot, lambda: f"{EXPORTED}; it was the chat model, chat now uses {DEFAULT_CHAT}"
                         in text_of(screen, "#diagnosis"))
        await wait_until(pilot, lambda: engine_name(app) == DEFAULT_CHAT, 120)
        assert ACCEPTED_TOKEN not in screen_text(pilot)


async def test_a_download_can_be_stopped_and_says_how_to_resume(own_cache: Settings, hub_env: FakeHub) -> None:
    app = ChatApp(own_cache)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        await pilot.press(*"pgpt-test/slow", "ctrl+g")  # its weights trickle in for seconds
        await wait_until(pilot, lambda: text_of(screen, "#job-file").startswith("file model.safetensors"))
        assert screen.query_one("#job-row").display and " MB/s · ETA" in text_of(screen, "#job-total")
        keys = [k.description for k in screen.query(FooterKey)]
        assert "Stop" in keys and "Get" not in keys  # the job keys wait for the job
        await pilot.press("ctrl+x")
        stopped_at = time.monotonic()
        assert "stopping…" in text_of(screen, "#diagnosis")
        await wait_until(pilot, lambda: not screen.busy, 120)
        # It stops mid-file (it used to fetch the rest of the file first: 90 MB trickling at 6 MB/s).
        assert time.monotonic() - stopped_at < 5
        assert re.search(r"The download of pgpt-test/slow was cancelled in model\.safetensors \(\d+\.\d MB of it "
                         r"kept\); run it again to resume\.", text_of(screen, "#diagnosis")), text_of(screen, "#diagnosis")
        assert not screen.query_one("#job-row").display
        await pilot.pause()
        assert "Get" in [k.description for k in screen.query(FooterKey)]
        assert not list((own_cache.home / "downloads").glob("pgpt-test--slow@*"))  # never marked ready


def tui_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                            env=cli_env(settings), timeout=300)
    assert "Traceback" not in result.stderr
    return result


def test_models_delete_on_the_command_line_refuses_what_is_not_an_export(settings: Settings,
                                                                       own_cache: Settings) -> None:
    cache = own_cache.model_cache
    tiny = cache / "tiny-fp32"  # a real export folder as far as the cache can tell: a pgpt manifest
    tiny.mkdir()
    (tiny / "model.onnx").write_bytes(b"\0" * 2_000_000)
    write_manifest(tiny, {"kind": "llm", "dtype": "fp32"})
    set_active_model(own_cache, "tiny-fp32")
    (cache / "notes").mkdir()
    (cache / "notes" / "mine.txt").write_text("not a model")

    deleted = tui_cli(own_cache, "models", "--delete", "tiny-fp32")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == f"deleted 2 MB: tiny-fp32; it was the chat model, chat now uses {DEFAULT_CHAT}"
    assert not tiny.exists() and "active_model" not in read_config(own_cache)
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]

    for bad in ("notes", "../home", "no-such-model", str(cache / DEFAULT_CHAT), ""):
        refused = tui_cli(own_cache, "models", "--delete", bad)
        assert refused.returncode == 2 and refused.stdout == ""
        [line] = refused.stderr.splitlines()  # one paragraph
        assert line.startswith("error: Model not found: ") and "nothing was deleted" in line
        assert "`pgpt-tui models` to list the exported models" in line
    assert (cache / "notes" / "mine.txt").is_file() and (cache / DEFAULT_CHAT).is_dir()

    embedder = find_model(own_cache, DEFAULT_EMBEDDER)  # F3's question says what deleting it stops
    assert "until `pgpt-export --default` prepares it again" in ConfirmDelete(embedder, False).question
    linked = tui_cli(own_cache, "models", "--delete", DEFAULT_EMBEDDER)  # a link: the target stays
    assert linked.stdout.strip() == f"removed the link: {DEFAULT_EMBEDDER}"
    assert not (cache / DEFAULT_EMBEDDER).exists()
    assert (settings.model_cache / DEFAULT_EMBEDDER / "manifest.json").is_file()
    listed = tui_cli(own_cache, "models")
    assert "all-minilm" not in listed.stdout and DEFAULT_CHAT in listed.stdout
    (cache / "docs").mkdir()
    (cache / "docs" / "a.txt").write_text("A note.")
    without = tui_cli(own_cache, "ingest", str(cache / "docs"))  # and how to get it back
    assert without.returncode != 0 and "prepare it with `pgpt-export --default`" in without.stderr, without.stderr


async def test_fast_prompts_export_a_prefill_graph_made_from_the_decode_graph(
        own_cache: Settings, hub_env: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """^f asks the export for --prefill int8: an int8 or int4 model over 500M parameters gets a prefill
    graph made from its decode graph's weights (the 135M test model is taken as one here); the check
    measures it and keeps or drops it as the CLI's export does."""
    from textual.widgets import Checkbox

    from pgpt.export import prefill_graph

    monkeypatch.setenv("HF_TOKEN", ACCEPTED_TOKEN)
    monkeypatch.setattr(prefill_graph, "MAX_PARAMETERS", 0)
    app = ChatApp(own_cache)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        assert screen.prefill == "auto" and "^f fast prompts" in screen_text(pilot)
        await pilot.press(*GATED, "ctrl+t", "ctrl+f")
        assert screen.dtype == "int8" and screen.prefill == "int8" and screen.query_one("#prefill", Checkbox).value
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: "load:" in text_of(screen, "#diagnosis"), 300)
        await wait_until(pilot, lambda: not screen.busy, 900)
        assert "smollm2-int8 is ready (int8" in text_of(screen, "#diagnosis")
        manifest = find_model(own_cache, "smollm2-int8").manifest
        # measured only where a prefill graph was made: with MAX_PARAMETERS 0, the streamed one
        measured = manifest["quality"]["prefill"]
        assert 0.8 <= measured["top1_agreement"] <= 1.0  # kept at 90% and above, dropped below
        assert measured.get("dropped") or manifest["prefill"]["method"].startswith("dynamic int8 MatMul")


@pytest.mark.parametrize(("dtype", "graph", "requested", "cuda_reason", "label"),
                         [("fp16", "fused", "auto", "", "CUDA"), ("int4", "fused", "auto", "", "CPU"),
                          ("int4", "fused", "cuda", "", "CUDA"), ("fp32", "optimum", "auto", "", "CUDA"),
                          ("fp16", "fused", "auto", "no GPU", "CPU (slow)"), ("int8", "fused", "cpu", "", "CPU")])
def test_on_column_says_where_chat_runs_each_export(tmp_path: Path, dtype: str, graph: str, requested: str,
                                                    cuda_reason: str, label: str) -> None:
    model = ModelInfo("m", tmp_path, {"dtype": dtype, "graph": graph, "kind": "llm"})
    assert provider_label(model, cuda_reason, requested) == label


async def test_the_message_area_keeps_its_rows_at_60x15(own_cache: Settings) -> None:
    """At 60x15 the model list took every row and the check's message had none: nothing was said."""
    app = ChatApp(own_cache)
    async with app.run_test(size=(60, 15)) as pilot:
        screen = await open_models(pilot)
        await pilot.press(*"not a repo!!", "enter")
        await wait_until(pilot, lambda: not screen.busy and "repo id" in text_of(screen, "#diagnosis"))
        await pilot.pause()
        info = screen.query_one("#info")
        assert info.content_region.height >= 2, info.region
        assert "not a Hugging Face repo id" in " ".join(screen_text(pilot).split())
        assert screen.query_one(ModelTable).region.height >= 3  # the list shrank, but shows a row or two
