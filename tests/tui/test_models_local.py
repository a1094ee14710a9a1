"""The Models screen (F3) with a model on this machine: a .gguf file or a Hugging Face folder is
described and exported from the panel, as `pgpt-export PATH --dtype ...` would (no Hub involved)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from pgpt.runtime.models import DEFAULT_LLM, find_model
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from pgpt.tui.screens.models.messages import LocalChecked
from support import gguf_path
from test_app import wait_until
from test_models_screen import own_cache  # noqa: F401 (a fixture)
from test_models_screen import SIZE, engine_name, open_models, screen_text, text_of
from tiny_models import make_tiny_llama


async def test_a_local_gguf_is_described_and_gets_the_type_that_keeps_its_4_bit_blocks(own_cache: Settings) -> None:
    app = ChatApp(own_cache)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        assert screen.dtype == "fp32"
        screen.query_one("#repo", Input).value = f"'{gguf_path()}'"  # quoted, as a file manager copies a path
        await pilot.press("enter")
        await wait_until(pilot, lambda: not screen.busy and "on this machine" in text_of(screen, "#diagnosis"))
        diagnosis = text_of(screen, "#diagnosis")
        assert diagnosis.startswith(f"{gguf_path()} is a GGUF file on this machine (")
        assert "llama architecture" in diagnosis and "weights in blocks of at most 4 bits" in diagnosis
        assert "^b exports it as int4 into the model cache" in diagnosis
        assert screen.dtype == "int4"  # the Q4_1 file: its blocks are kept exactly
        # the choice reads without colour: the dot only on the chosen type, no X in the unticked box (the
        # buttons are drawn a refresh after the type is set: CI once read the screen in between)
        await wait_until(pilot, lambda: "▐●▌ int4" in screen_text(pilot))
        assert "▐ ▌ fp32" in screen_text(pilot)
        assert "▐ ▌ ^f fast prompts" in screen_text(pilot)
        await pilot.press("ctrl+g")  # nothing to download
        assert "is on this machine already: ^b exports it as int4" in text_of(screen, "#diagnosis")
        assert not screen.busy


async def test_the_type_a_check_chooses_holds_at_once(own_cache: Settings) -> None:
    # the RadioSet learns of a button set from code one message later: ^b pressed in between (or CI's test
    # above reading the type as the diagnosis appeared) got fp32 for a Q4_1 file
    app = ChatApp(own_cache)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        screen._local_checked(LocalChecked("a.gguf is a GGUF file on this machine.", "int4"))  # as a handler runs
        assert screen.dtype == "int4"  # at once, not after the RadioSet's message
        await pilot.pause()
        assert screen.dtype == "int4" and "▐●▌ int4" in screen_text(pilot)
        await pilot.press("ctrl+t")
        assert screen.dtype == "fp32"  # the next one round (fp16 needs a GPU)
        await pilot.click("#dtype-int8")
        assert screen.dtype == "int8"


async def test_a_local_model_folder_is_exported_from_the_panel_and_becomes_the_chat_model(
        own_cache: Settings, tmp_path: Path) -> None:
    folder = make_tiny_llama(tmp_path / "My Tiny Llama", 3, find_model(own_cache, f"{DEFAULT_LLM}-int8").path)
    app = ChatApp(own_cache)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: engine_name(app) == f"{DEFAULT_LLM}-int8", 120)
        screen = await open_models(pilot)
        screen.query_one("#repo", Input).value = str(folder)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not screen.busy and "model folder" in text_of(screen, "#diagnosis"))
        assert f"{folder} is a model folder on this machine (model type llama)" in text_of(screen, "#diagnosis")
        assert screen.dtype == "int8"
        await pilot.press("ctrl+t", "ctrl+t")  # random weights pass the quality check in fp32 only
        assert screen.dtype == "fp32"
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: not screen.busy, 600)
        lines = text_of(screen, "#diagnosis")
        assert lines.startswith(f"Exporting {folder} as fp32…")
        for stage in ("resolve:", "load:", "export:", "validate:", "done:"):
            assert stage in lines, lines
        assert "download:" not in lines
        # the name pgpt-export derives from the folder's (spaces made "-"), a new model in the cache
        assert "my-tiny-llama-fp32 is ready (fp32" in lines, lines
        assert find_model(own_cache, "my-tiny-llama-fp32").dtype == "fp32"
        await wait_until(pilot, lambda: engine_name(app) == "my-tiny-llama-fp32", 120)
        assert "my-tiny-llama-fp32" in screen_text(pilot)


def test_the_preview_gives_the_exports_reason_instead_of_offering_an_export_that_fails(tmp_path: Path) -> None:
    """A truncated GGUF, a 16-byte file, a folder without a tokenizer or of an architecture the
    exporter does not know read "^b exports it as int8" (and "1 MB" for 16 bytes) (t62)."""
    import json

    from pgpt.tui.jobs import describe_local

    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(gguf_path().read_bytes()[:5_000_000])
    tiny = tmp_path / "notes.gguf"
    tiny.write_text("just some notes\n")
    no_tokenizer = tmp_path / "notok"
    no_tokenizer.mkdir()
    (no_tokenizer / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (no_tokenizer / "model.safetensors").write_bytes(b"")
    mamba = tmp_path / "mamba"
    mamba.mkdir()
    (mamba / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    (mamba / "model.safetensors").write_bytes(b"")
    (mamba / "tokenizer.json").write_text("{}")
    for path, words in ((truncated, "is a corrupt or truncated GGUF file"), (tiny, "is not a GGUF file"),
                        (no_tokenizer, "has no tokenizer"), (mamba, "The architecture 'mamba' cannot be exported")):
        line, dtype = describe_local(path)
        assert dtype == "" and line.startswith(f"{path} cannot be exported: ") and words in line, line
    line, dtype = describe_local(gguf_path())
    assert dtype == "int4" and "MB" in line and "cannot" not in line


def test_a_gguf_file_without_its_suffix_is_a_local_model(tmp_path: Path) -> None:
    """An Ollama blob (models/blobs/sha256-...) is a GGUF file without the suffix: pgpt-export took it,
    the Models screen sent it to the Hub as a repo id."""
    from pgpt.tui.jobs import local_model

    blob = tmp_path / "sha256-5ee4f07cdb9b"
    blob.write_bytes(gguf_path().read_bytes()[:4096])
    other = tmp_path / "notes"
    other.write_text("not a model")
    assert local_model(str(blob)) == blob and local_model(str(other)) is None
    assert local_model("HuggingFaceTB/SmolLM2-135M-Instruct") is None


def test_a_gguf_of_3_bit_blocks_is_offered_int4(tmp_path: Path) -> None:
    """int4 keeps Q3_K (and Q2_K) blocks exactly, but a mostly-Q3_K file was offered int8: twice the
    size for nothing kept better."""
    from pgpt.bench.synthetic_gguf import GGUFModel, train_vocabulary, write_gguf
    from pgpt.tui.jobs import describe_local

    model = GGUFModel("llama", hidden=256, intermediate=512, heads=4, kv_heads=2, head_dim=64, default_type="Q3_K")
    path = write_gguf(tmp_path / "q3k.gguf", model, train_vocabulary(256))
    line, dtype = describe_local(path)
    assert dtype == "int4" and "of its weights in blocks of at most 4 bits" in line, line


async def test_quitting_during_an_export_asks_first_and_says_what_was_cut(own_cache: Settings) -> None:
    """Ctrl+Q during an F3 export quit at once, without a word, and left its temporary folder (t53)."""
    from pgpt.tui.chat.quitting import quit_note
    from pgpt.tui.screens.confirm import Confirm

    app = ChatApp(own_cache)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        screen.query_one("#repo", Input).value = str(gguf_path())
        await pilot.press("enter")
        await wait_until(pilot, lambda: not screen.busy and "on this machine" in text_of(screen, "#diagnosis"))
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: screen.long_job == "export")
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        assert "A model export is running (F3). Quit anyway?" in str(app.screen.query_one("Static").render())
        assert quit_note(app).startswith("the model export (F3) stopped when the app quit; nothing of it was kept")
        await pilot.press("n")  # keeps the app and the export
        await wait_until(pilot, lambda: not isinstance(app.screen, Confirm))
        assert app.is_running and screen.long_job == "export"
        await pilot.press("ctrl+x")  # stopped: quitting asks nothing more
        await wait_until(pilot, lambda: not screen.busy, 120)
        assert quit_note(app) == ""


async def test_the_export_bar_never_goes_backwards(own_cache: Settings) -> None:
    """The prefill graph's float pass reports "export" after "quantize" began: 67% -> 50% -> 67% (t53)."""
    from textual.widgets import ProgressBar

    from pgpt.tui.screens.models.messages import ExportStage

    app = ChatApp(own_cache)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        screen._start("export", "Exporting…")
        screen._stages = ["resolve", "load", "export", "quantize", "validate", "done"]
        shown, labels = [], []
        for stage in ("resolve", "load", "export", "quantize", "export", "quantize", "validate"):
            screen._export_stage(ExportStage(stage, "[   1.0s] working"))
            shown.append(screen.query_one("#job-bar", ProgressBar).progress)
            labels.append(text_of(screen, "#job-total"))
        assert shown == sorted(shown) and shown[-1] == 5, shown
        assert labels[4] == "stage 4/6: quantize", labels
        screen._end_job()
