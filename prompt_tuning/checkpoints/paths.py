"""Checkpoint locations: local paths, `file://` URLs and `gs://bucket/path`.

Every reader and writer normalises its path here first, then lists / reads
small files through `etils.epath` and opens arrays through a tensorstore
kvstore spec built by `kvstore_spec`. Nothing here touches the network: GCS
is reached only when tensorstore or epath actually read a `gs://` location.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

from etils import epath

from prompt_tuning.checkpoints.errors import CheckpointError

PathLike = str | os.PathLike

_GCS = "gs://"
_FILE = "file://"


def normalize(path: PathLike) -> str:
    """Canonical string form of a checkpoint path.

    `file:///a/b` and relative local paths become absolute local paths; `gs://`
    paths keep their scheme. Trailing slashes are dropped.

    Raises:
      CheckpointError: for an unsupported scheme or a `file://` URL with a host.
    """
    text = os.fspath(path)
    if text.startswith(_GCS):
        split_gcs(text)  # validates the bucket name
        return text.rstrip("/")
    if text.startswith(_FILE):
        url = urllib.parse.urlparse(text)
        if url.netloc not in ("", "localhost"):
            raise CheckpointError(
                f"{text}: file:// URLs must be absolute (file:///path); got host {url.netloc!r}."
            )
        text = urllib.parse.unquote(url.path)
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise CheckpointError(
            f"{text}: unsupported scheme {scheme!r}; use a local path, file:// or gs://."
        )
    return os.path.abspath(os.path.expanduser(text))


def is_gcs(path: PathLike) -> bool:
    return os.fspath(path).startswith(_GCS)


def split_gcs(path: PathLike) -> tuple[str, str]:
    """`gs://bucket/a/b` -> `("bucket", "a/b")`; the object path may be empty."""
    text = os.fspath(path)
    if not text.startswith(_GCS):
        raise CheckpointError(f"{text}: not a gs:// path.")
    bucket, _, key = text[len(_GCS) :].partition("/")
    if not bucket:
        raise CheckpointError(f"{text}: gs:// path has no bucket name.")
    return bucket, key.strip("/")


def join(path: PathLike, *parts: str) -> str:
    """Joins with `/` for both local and `gs://` paths (no OS separators on GCS)."""
    base = normalize(path)
    if is_gcs(base):
        return "/".join([base, *(p.strip("/") for p in parts)])
    return os.path.join(base, *parts)


def kvstore_spec(path: PathLike) -> dict[str, Any]:
    """The tensorstore kvstore spec of a directory or file.

    `gs://bucket/a/b` -> `{'driver': 'gcs', 'bucket': 'bucket', 'path': 'a/b'}`;
    local and `file://` paths -> `{'driver': 'file', 'path': '/abs/a/b'}`.
    """
    location = normalize(path)
    if is_gcs(location):
        bucket, key = split_gcs(location)
        return {"driver": "gcs", "bucket": bucket, "path": key}
    return {"driver": "file", "path": location}


def as_epath(path: PathLike) -> epath.Path:
    """An `epath.Path` for listing and reading small files (local or GCS)."""
    return epath.Path(normalize(path))


def require_exists(path: PathLike) -> epath.Path:
    """Returns the epath of `path`, or raises a CheckpointError naming it."""
    location = as_epath(path)
    if not location.exists():
        raise CheckpointError(f"{path}: no such file or directory.")
    return location


def is_nonempty_dir(path: PathLike) -> bool:
    location = as_epath(path)
    return location.is_dir() and any(True for _ in location.iterdir())


def remove_tree(path: PathLike) -> None:
    """Deletes a directory and everything below it (local or GCS)."""
    location = as_epath(path)
    if location.exists():
        location.rmtree()


@contextlib.contextmanager
def staged_directory(final: PathLike) -> Iterator[str]:
    """Yields a folder to write into that appears as `final` only when complete.

    Locally this is a temporary sibling renamed to `final` on success (and
    deleted on an exception), so a crash never leaves a half-written `final`.
    GCS has no directory rename: there `final` itself is yielded, and writers
    put their commit file (T5X `checkpoint`, HF `config.json`) last, so readers
    that look for it never pick up a partial folder.

    Raises:
      CheckpointError: when `final` already exists.
    """
    target = as_epath(final)
    if target.exists():
        raise CheckpointError(f"{final}: already exists; refusing to overwrite it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_gcs(target):
        yield os.fspath(target)
        return
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        yield os.fspath(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.replace(staging, target)
