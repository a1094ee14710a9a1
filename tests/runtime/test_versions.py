"""Model versions on disk: publish, list, address by name@version, switch, roll back, prune, delete."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pgpt.runtime.errors import ModelIntegrityError, ModelNotFoundError, UsageError, VersionNotFoundError
from pgpt.runtime.manifest import write_manifest
from pgpt.runtime.models import delete_model, find_model, list_models
from pgpt.runtime.settings import Settings
from pgpt.runtime.versions import (
    can_publish,
    delete_version,
    list_versions,
    publish_version,
    rollback,
    use_version,
    version_of,
    versions_folder,
)

NAME = "toy-int8"


def _export(folder: Path, weights: bytes, created: str) -> Path:
    """A folder that looks like a finished export: files and a pgpt manifest."""
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(weights)
    (folder / "config.json").write_text("{}")
    write_manifest(folder, {"kind": "llm", "dtype": "int8", "created": created})
    return folder


@pytest.fixture()
def cache_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", model_cache=tmp_path / "models")


def _publish(settings: Settings, n: int, keep: int = 3) -> str:
    settings.model_cache.mkdir(parents=True, exist_ok=True)
    work = settings.model_cache / f".work-{n}"
    _export(work, bytes([n]) * 100, f"2026-01-0{n}T00:00:00Z")
    return publish_version(settings.model_cache, NAME, work, keep).version


def test_each_export_is_a_version_and_the_newest_is_active(cache_settings: Settings) -> None:
    v1, v2 = _publish(cache_settings, 1), _publish(cache_settings, 2)
    assert v1 != v2 and len(v1) == 12
    assert os.readlink(cache_settings.model_cache / NAME) == f".versions/{NAME}/{v2}"
    versions = list_versions(cache_settings, NAME)
    assert [(v.version, v.active) for v in versions] == [(v2, True), (v1, False)]
    listed = list_models(cache_settings)
    assert [(m.name, m.version) for m in listed] == [(NAME, v2)]
    assert listed[0].path == versions_folder(cache_settings.model_cache, NAME) / v2  # never the link
    assert find_model(cache_settings, f"{NAME}@{v1[:5]}").version == v1
    assert find_model(cache_settings, NAME).ref == f"{NAME}@{v2}"
    assert _publish(cache_settings, 2) == v2  # the same files again: the same version, nothing added
    assert len(list_versions(cache_settings, NAME)) == 2
    with pytest.raises(ModelNotFoundError, match=rf"no exported model called 'nosuch' \(exported: {NAME}\)"):
        list_versions(cache_settings, "nosuch")  # `models --versions nosuch` said "Run pgpt-export --default"


def test_use_and_rollback_walk_the_history(cache_settings: Settings) -> None:
    v1, v2, v3 = (_publish(cache_settings, n) for n in (1, 2, 3))
    assert use_version(cache_settings, NAME, v1[:6]).version == v1
    assert find_model(cache_settings, NAME).version == v1
    assert rollback(cache_settings, NAME).version == v3  # undo the switch
    assert rollback(cache_settings, NAME).version == v2  # and the export before it
    assert rollback(cache_settings, NAME).version == v1
    with pytest.raises(VersionNotFoundError, match="no earlier version"):
        rollback(cache_settings, NAME)
    assert find_model(cache_settings, NAME).version == v1


def test_a_damaged_version_is_neither_used_nor_rolled_back_to_but_can_be_deleted(cache_settings: Settings) -> None:
    """--rollback switched to a damaged version (only --use checked), and a damaged kept version
    could only go with every version of its name (the hint's --delete VERSION found no model)."""
    v1, v2 = _publish(cache_settings, 1), _publish(cache_settings, 2)
    damaged = versions_folder(cache_settings.model_cache, NAME) / v1 / "model.onnx"
    damaged.write_bytes(b"\0" * 100)
    with pytest.raises(ModelIntegrityError, match="model.onnx") as used:
        use_version(cache_settings, NAME, v1)
    assert f"--delete {NAME}@{v1}" in (used.value.hint or "")
    use_version(cache_settings, NAME, v2)  # history: v1, v2 -> rolling back would reach v1
    with pytest.raises(ModelIntegrityError):
        rollback(cache_settings, NAME)
    assert find_model(cache_settings, NAME).version == v2  # nothing switched
    with pytest.raises(UsageError, match="active version"):
        delete_version(cache_settings, NAME, v2)
    gone = delete_version(cache_settings, NAME, v1[:6])
    assert gone["version"] == v1 and gone["size_mb"] >= 0
    assert [v.version for v in list_versions(cache_settings, NAME)] == [v2]
    with pytest.raises(VersionNotFoundError, match="no earlier version"):
        rollback(cache_settings, NAME)


def test_unknown_or_ambiguous_versions_name_the_kept_ones(cache_settings: Settings) -> None:
    versions = [_publish(cache_settings, n, keep=20) for n in range(1, 10)]
    with pytest.raises(VersionNotFoundError, match=f"no version starting with 'zz'.*{versions[-1]}"):
        find_model(cache_settings, f"{NAME}@zz")
    shared = next(v[0] for v in versions if sum(w[0] == v[0] for w in versions) > 1)
    with pytest.raises(VersionNotFoundError, match=f"more than one version starting with '{shared}'"):
        use_version(cache_settings, NAME, shared)
    with pytest.raises(ModelNotFoundError, match="no exported model called 'nothing'"):
        find_model(cache_settings, "nothing@123")


def test_only_the_newest_versions_are_kept_but_never_the_active_one(cache_settings: Settings) -> None:
    v1 = _publish(cache_settings, 1)
    v2 = _publish(cache_settings, 2, keep=2)
    use_version(cache_settings, NAME, v1)  # the oldest is active now
    v3 = _publish(cache_settings, 3, keep=2)  # publishing activates v3; keep 2: v3, v2
    assert [v.version for v in list_versions(cache_settings, NAME)] == [v3, v2]
    use_version(cache_settings, NAME, v2)
    v4 = _publish(cache_settings, 4, keep=1)
    assert [v.version for v in list_versions(cache_settings, NAME)] == [v4]
    # an older export made again: the same version, active again, and it is the one --keep-versions 1 keeps
    # (it kept both: its first export's time was older than v5's, t62)
    v5 = _publish(cache_settings, 5, keep=3)
    assert _publish(cache_settings, 4, keep=1) == v4
    assert [v.version for v in list_versions(cache_settings, NAME)] == [v4] and v5 != v4
    assert not [p for p in versions_folder(cache_settings.model_cache, NAME).iterdir() if p.name.startswith(".")]


def test_a_plain_folder_from_before_versions_becomes_the_first_version(cache_settings: Settings) -> None:
    plain = _export(cache_settings.model_cache / NAME, b"old" * 10, "2025-12-01T00:00:00Z")
    old = version_of(find_model(cache_settings, NAME).manifest)
    assert [v.version for v in list_versions(cache_settings, NAME)] == [old]
    assert find_model(cache_settings, f"{NAME}@{old}").path == plain
    new = _publish(cache_settings, 5)
    assert (cache_settings.model_cache / NAME).is_symlink()
    assert [v.version for v in list_versions(cache_settings, NAME)] == [new, old]
    assert rollback(cache_settings, NAME).version == old


def test_delete_removes_the_link_and_every_version(cache_settings: Settings) -> None:
    _publish(cache_settings, 1)
    _publish(cache_settings, 2)
    elsewhere = _export(cache_settings.model_cache.parent / "outside", b"x" * 50, "2026-01-01T00:00:00Z")
    os.symlink(elsewhere, cache_settings.model_cache / "linked")
    deleted = delete_model(cache_settings, NAME)
    assert deleted.size_bytes == 2 * 100 + 2 * 2 and not deleted.link_only
    assert not (cache_settings.model_cache / NAME).exists()
    assert not versions_folder(cache_settings.model_cache, NAME).exists()
    assert delete_model(cache_settings, "linked").link_only and (elsewhere / "model.onnx").is_file()
    _publish(cache_settings, 3)
    with pytest.raises(ModelNotFoundError, match=rf"no exported model called 'nosuch' \(exported: {NAME}\)"):
        delete_model(cache_settings, "nosuch")  # a typo said "... is not a model exported by pgpt (no pgpt manifest)"


def test_only_exports_and_version_links_may_get_a_new_version(cache_settings: Settings, tmp_path: Path) -> None:
    cache = cache_settings.model_cache
    assert can_publish(cache, NAME)
    _publish(cache_settings, 1)
    assert can_publish(cache, NAME)
    (cache / "mine").mkdir()
    os.symlink(tmp_path, cache / "linked")
    assert not can_publish(cache, "mine") and not can_publish(cache, "linked")


def test_a_link_whose_version_folder_is_missing_is_listed_as_damaged_and_can_be_deleted(cache_settings: Settings,
                                                                                         tmp_path: Path) -> None:
    """A cache copied with `cp -r` of its entries holds links into a .versions folder it lacks: `models`
    said "No exported models", `doctor` "damaged models none" and chat "nothing exported"."""
    from pgpt.runtime.errors import ModelIntegrityError
    from pgpt.runtime.models import active_chat_model, damaged_models

    source = Settings(home=tmp_path / "home", model_cache=tmp_path / "source")
    publish_version(source.model_cache, NAME, _export(tmp_path / "staged", b"weights", "2026-12-01T00:00:00"), 3)
    cache_settings.model_cache.mkdir(parents=True)
    copied = cache_settings.model_cache / NAME
    copied.symlink_to(os.readlink(source.model_cache / NAME))  # what cp -r of the entry alone makes
    assert list_models(cache_settings) == []
    [(name, why)] = damaged_models(cache_settings)
    assert name == NAME and ".versions" in why and "missing" in why and "cp -a" in why
    with pytest.raises(ModelIntegrityError, match="No usable chat model") as caught:
        active_chat_model(cache_settings)
    assert f"pgpt-tui models --delete {NAME}" in caught.value.hint
    for chosen in ({"PGPT_MODEL": NAME}, {}):  # named by PGPT_MODEL, or the config's active model
        settings = Settings(home=cache_settings.home, model_cache=cache_settings.model_cache,
                            model=chosen.get("PGPT_MODEL", ""))
        if not chosen:
            settings.home.mkdir(parents=True, exist_ok=True)
            settings.config_file.write_text(json.dumps({"active_model": NAME}))
        with pytest.raises(ModelIntegrityError, match="is damaged: it is a link to") as caught:
            active_chat_model(settings)  # it said "no exported model called ..." (exported: none yet)
        assert f"pgpt-tui models --delete {NAME}" in caught.value.hint
    deleted = delete_model(cache_settings, NAME)
    assert deleted.link_only and not copied.is_symlink() and damaged_models(cache_settings) == []


def test_a_model_deleted_while_it_loads_is_named_so_not_called_damaged(cache_settings: Settings) -> None:
    """An `ask` loading a model that `models --delete` removed in another shell said "Model files
    damaged ... export the model again" (tester t43); one file missing is still damage."""
    from pgpt.runtime.llm.text import load_tokenizer
    from pgpt.runtime.manifest import read_manifest, verify_folder

    _publish(cache_settings, 1)
    folder = find_model(cache_settings, NAME).path
    manifest = read_manifest(folder)
    (folder / "config.json").unlink()
    with pytest.raises(ModelIntegrityError, match="config.json is missing"):
        verify_folder(folder, manifest)
    delete_model(cache_settings, NAME)
    for load in (lambda: verify_folder(folder, manifest), lambda: load_tokenizer(folder)):
        with pytest.raises(ModelNotFoundError, match="was deleted while it was loading") as deleted:
            load()
        assert "export the model again" not in str(deleted.value.hint)


def test_sizes_are_rounded_once_as_the_export_said_them(cache_settings: Settings,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A 4,528,348-byte export was "5 MB" when written and "4MB" in `models --versions`: 4.5 rounded
    again (half to even) from the JSON's one decimal (t51)."""
    import argparse

    from pgpt.tui.cli.models import _versions

    cache_settings.model_cache.mkdir(parents=True)
    work = _export(cache_settings.model_cache / ".work", b"\0" * 4_528_346, "2026-01-01T00:00:00Z")
    publish_version(cache_settings.model_cache, NAME, work, 3)
    assert list_versions(cache_settings, NAME)[0].summary()["size_bytes"] == 4_528_348  # with config.json's "{}"
    _versions(cache_settings, argparse.Namespace(versions=NAME, json=False))
    assert " 5MB " in capsys.readouterr().out


def test_a_name_without_its_type_suggests_the_exports_that_have_it(cache_settings: Settings) -> None:
    """`--model tiny-llama` was told to export with `--name NAME`, which never makes a name without
    its type (t62): the exports of that name are suggested."""
    _publish(cache_settings, 1)
    base = NAME.rsplit("-", 1)[0]
    with pytest.raises(ModelNotFoundError) as missing:
        find_model(cache_settings, base)
    assert missing.value.hint == f"An export's name ends with its type: did you mean {NAME}?"
