"""Path handling: local, file:// and gs:// (parsing and specs only, no network)."""

import os
import re

import pytest

from prompt_tuning.checkpoints import paths, t5x
from prompt_tuning.checkpoints.errors import CheckpointError


def test_file_url_becomes_absolute_local_path(tmp_path):
    assert paths.normalize(f"file://{tmp_path}/a/") == f"{tmp_path}/a"
    assert paths.normalize(f"file://localhost{tmp_path}") == str(tmp_path)
    assert paths.normalize("file:///with%20space") == "/with space"


def test_relative_path_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.normalize("model") == os.path.join(str(tmp_path), "model")


def test_gcs_path_keeps_scheme_and_drops_trailing_slash():
    assert paths.normalize("gs://bucket/models/t5/") == "gs://bucket/models/t5"
    assert paths.is_gcs("gs://bucket/x") and not paths.is_gcs("/gs/bucket")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("gs://bucket/a/b", ("bucket", "a/b")),
        ("gs://bucket/a/b/", ("bucket", "a/b")),
        ("gs://bucket", ("bucket", "")),
        ("gs://my-bucket.example/t5x/checkpoint_3", ("my-bucket.example", "t5x/checkpoint_3")),
    ],
)
def test_split_gcs(path, expected):
    assert paths.split_gcs(path) == expected


@pytest.mark.parametrize("bad", ["gs://", "gs:///no-bucket", "s3://bucket/x", "file://host/x"])
def test_bad_urls_are_named_in_the_error(bad):
    with pytest.raises(CheckpointError, match=re.escape(bad.split("/")[0])):
        paths.normalize(bad)


def test_kvstore_spec_for_each_location(tmp_path):
    assert paths.kvstore_spec("gs://bkt/dir/arr") == {
        "driver": "gcs",
        "bucket": "bkt",
        "path": "dir/arr",
    }
    local = {"driver": "file", "path": f"{tmp_path}/arr"}
    assert paths.kvstore_spec(tmp_path / "arr") == local
    assert paths.kvstore_spec(f"file://{tmp_path}/arr") == local


def test_join_uses_slashes_on_gcs():
    assert paths.join("gs://bkt/model/", "checkpoint_3", "checkpoint") == (
        "gs://bkt/model/checkpoint_3/checkpoint"
    )


@pytest.mark.parametrize("recorded", ["file", "gfile", "gcs"])
def test_t5x_zarr_leaf_follows_the_step_folder_not_the_recorded_driver(recorded, tmp_path):
    spec = {"driver": "zarr", "kvstore": {"driver": recorded, "path": "target.a.kernel"}}
    on_gcs = t5x.zarr_location("gs://bkt/run/checkpoint_3", spec, "a/kernel")
    assert paths.kvstore_spec(on_gcs) == {
        "driver": "gcs",
        "bucket": "bkt",
        "path": "run/checkpoint_3/target.a.kernel",
    }
    local = t5x.zarr_location(str(tmp_path), spec, "a/kernel")
    assert paths.kvstore_spec(local) == {"driver": "file", "path": f"{tmp_path}/target.a.kernel"}


def test_t5x_zarr_leaf_with_unknown_driver_is_rejected():
    spec = {"driver": "zarr", "kvstore": {"driver": "s3", "path": "target.a"}}
    with pytest.raises(CheckpointError, match="a/kernel"):
        t5x.zarr_location("/ckpt/checkpoint_1", spec, "a/kernel")


def test_staged_directory_appears_only_when_complete(tmp_path):
    final = tmp_path / "out"
    with paths.staged_directory(final) as staging:
        assert not final.exists()
        (tmp_path / "out_marker").write_text("")
        with open(os.path.join(staging, "f"), "w") as f:
            f.write("x")
    assert (final / "f").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out_marker"]


def test_staged_directory_cleans_up_after_a_failure(tmp_path):
    with pytest.raises(RuntimeError), paths.staged_directory(tmp_path / "out"):
        raise RuntimeError("writer crashed")
    assert list(tmp_path.iterdir()) == []


def test_staged_directory_refuses_an_existing_target(tmp_path):
    with (
        pytest.raises(CheckpointError, match="already exists"),
        paths.staged_directory(tmp_path),
    ):
        pass
