"""The error table: every pgpt error and the foreign ones map to a title, one paragraph, an exit code."""

from __future__ import annotations

import pytest

from pgpt.runtime import errors as e


@pytest.mark.parametrize(
    "error, title, words",
    [
        (e.ConfigError("PGPT_THREADS='x' is not a whole number."), "Invalid setting", "README"),
        (e.UnsafeWeightsError("only pickle"), "Pickle weights refused", "safetensors"),
        (e.RemoteCodeError("auto_map"), "Model needs remote code", "--trust-remote-code"),
        (e.OutputExistsError("exists"), "Output folder exists", "-o"),
        (e.DiskSpaceError("needs 3 GB"), "Not enough disk space", "PGPT_MODEL_CACHE"),
        (e.QualityError("agrees 60%"), "Quality check failed", "--accept-quality-loss"),
        (e.ModelNotFoundError("none"), "Model not found", "pgpt-export --default"),
        (e.ModelIntegrityError("sha256"), "Model files damaged", "Export the model again"),
        (e.ContextLengthError("too long"), "Prompt too long", "--max-tokens"),
        (e.TemplateError("unsafe"), "Chat template error", "template"),
        (e.Cancelled("stopped"), "Cancelled", "Nothing was changed"),
        (e.IndexModelMismatchError("built with x"), "Index built with another embedding model", "--reindex"),
        (e.IngestLockedError("pid 12"), "Ingestion already running", "search and chat keep working"),
        (e.ProviderError("no CUDA", hint="Use --provider cpu."), "Execution provider unavailable", "--provider cpu"),
    ],
)
def test_pgpt_errors_map_to_cause_and_next_step(error: Exception, title: str, words: str) -> None:
    message = e.user_message(error)
    assert message.title == title
    assert str(error) in message.text and words in message.text
    assert "\n" not in message.text and "Traceback" not in message.text
    assert message.exit_code == (2 if isinstance(error, e.ConfigError) else 1)


@pytest.mark.parametrize(
    "error, title",
    [
        (PermissionError(13, "Permission denied", "/data"), "Permission denied"),
        (FileNotFoundError(2, "No such file", "/x"), "File not found"),
        (MemoryError(), "Out of memory"),
        (OSError(28, "No space left on device"), "System error"),
        (KeyboardInterrupt(), "Interrupted"),
        (RuntimeError("boom"), "Unexpected error"),
    ],
)
def test_foreign_errors_have_a_title_and_a_next_step(error: BaseException, title: str) -> None:
    message = e.user_message(error)
    assert message.title == title
    assert message.exit_code == 1
    assert message.text.endswith((".", "details."))


def test_long_messages_are_cut_to_one_paragraph() -> None:
    message = e.user_message(RuntimeError("x\n" * 500))
    assert "\n" not in message.text and len(message.text) < 600


def test_errors_subclass_the_builtins_callers_expect() -> None:
    assert issubclass(e.ConfigError, ValueError)
    assert issubclass(e.OutputExistsError, FileExistsError)
    assert issubclass(e.ModelNotFoundError, LookupError)
    assert issubclass(e.DiskSpaceError, OSError)
