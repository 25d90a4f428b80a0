"""What a training run persists under MODEL_DIR, and how it reads it back.

- `prompts/prompt_<step>.npy`: the prompt `[P, d]`, with a `sha256sum`-style
  sidecar `prompt_<step>.npy.sha256` written before it; both go through a temp
  file and a rename, so a reader never sees half a file. A prompt method whose
  export is several arrays saves `prompt_<step>.npz` the same way.
- `state/<step>/`: the resumable state (prompt, optimizer state, step) plus the
  data position (`data`: examples consumed; `data_iterator/shard_<s>.*`: each
  data shard's tf.data iterator state, written by the process reading it),
  saved with Orbax (which commits a step only once every process has written).
  Once committed, `state/<step>/sha256sums` lists the digest of every file in it.
- `rejected/`: prompts and state steps that failed verification (or were
  superseded by a different array), moved aside and named in the log, never deleted.

Everything is verified on read: a resumed run walks back from the newest state
step to the newest one whose digests match and that Orbax restores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import logging
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from prompt_tuning.checkpoints import paths
from prompt_tuning.checkpoints.errors import CheckpointError

log = logging.getLogger(__name__)

PROMPT_DIR = "prompts"
STATE_DIR = "state"
REJECTED_DIR = "rejected"
CHECKSUM_SUFFIX = ".sha256"
STATE_MANIFEST = "sha256sums"
_PROMPT_NAME = re.compile(r"^prompt_(\d+)\.np[yz]$")
# What a saved prompt file holds: one `[P, d]` array (.npy) or named arrays (.npz).
PromptContent = np.ndarray | Mapping[str, np.ndarray]


# ------------------------------------------------------------------ digests


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: epath.Path, data: bytes) -> None:
    """Writes `data` to `path` so that a reader sees either nothing or all of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.as_posix().startswith("gs://"):
        # Object stores have no rename; a single object write is already atomic.
        path.write_bytes(data)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp_{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _parse_sums(text: str) -> dict[str, str]:
    """`<hex>  <relative path>` lines (the `sha256sum` format) as {path: hex}."""
    sums = {}
    for line in text.splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"malformed line {line!r}")
        sums[name] = digest
    return sums


def _check_sums(root: epath.Path, sums: dict[str, str]) -> str | None:
    """The first file under `root` that is missing or whose digest differs, as a reason."""
    for name, digest in sorted(sums.items()):
        path = root / name
        if not path.exists():
            return f"{name} is missing"
        actual = _sha256(path.read_bytes())
        if actual != digest:
            return f"{name} has sha256 {actual[:12]}…, expected {digest[:12]}…"
    return None


def reject(model_dir: str | os.PathLike, path: epath.Path, reason: str) -> epath.Path:
    """Moves `path` (a file or a state step) to `MODEL_DIR/rejected/` and logs why."""
    destination = (
        epath.Path(model_dir) / REJECTED_DIR / f"{path.parent.name}_{path.name}.{time.time_ns()}"
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    path.rename(destination)
    log.warning("Rejected %s (%s); moved it to %s.", path, reason, destination)
    return destination


# ------------------------------------------------------------------ prompts


def prompt_path(model_dir: str | os.PathLike, step: int, suffix: str = ".npy") -> epath.Path:
    return epath.Path(model_dir) / PROMPT_DIR / f"prompt_{step}{suffix}"


def _serialise(prompt: PromptContent) -> tuple[bytes, str]:
    """`(file bytes, ".npy")` for one array (as float32), `(bytes, ".npz")` for named arrays."""
    buffer = io.BytesIO()
    if isinstance(prompt, Mapping):
        # np.savez stamps entries with the current time; a fixed stamp makes the bytes (and
        # digest) a function of the arrays, so a resumed run redoing a step recognises its file.
        with zipfile.ZipFile(buffer, "w") as archive:
            for name in sorted(prompt):
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(info, "w") as f:
                    np.lib.format.write_array(f, np.asarray(prompt[name]), allow_pickle=False)
        return buffer.getvalue(), ".npz"
    np.save(buffer, np.asarray(prompt, np.float32))
    return buffer.getvalue(), ".npy"


def _checksum_path(path: epath.Path) -> epath.Path:
    return path.parent / (path.name + CHECKSUM_SUFFIX)


def verify_prompt(path: str | os.PathLike) -> str | None:
    """None if the `.npy` at `path` matches its sidecar digest, else what is wrong."""
    path = epath.Path(path)
    if not path.exists():
        return "it does not exist"
    sidecar = _checksum_path(path)
    if not sidecar.exists():
        return f"its checksum file {sidecar.name} is missing"
    try:
        sums = _parse_sums(sidecar.read_text())
    except ValueError as e:
        return f"its checksum file {sidecar.name} is unreadable: {e}"
    if path.name not in sums:
        return f"its checksum file {sidecar.name} does not list it"
    return _check_sums(path.parent, {path.name: sums[path.name]})


def read_prompt(path: str | os.PathLike) -> PromptContent:
    """Reads a saved prompt `[P, d]` (or `.npz` arrays) after checking its sidecar digest."""
    problem = verify_prompt(path)
    if problem:
        raise CheckpointError(f"Prompt {path} failed verification: {problem}.")
    loaded = np.load(io.BytesIO(epath.Path(path).read_bytes()), allow_pickle=False)
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        return {k: loaded[k] for k in loaded.files}


def save_prompt(model_dir: str | os.PathLike, step: int, prompt: PromptContent) -> epath.Path:
    """Writes `prompt` `[P, d]` as `.npy` (named arrays as `.npz`) named by step, digest first.

    Each file is written atomically. A verified file already holding the same
    bytes (a resumed run redoing a step) is kept as it is; a damaged or
    different one is moved to `rejected/`.
    """
    data, suffix = _serialise(prompt)
    path = prompt_path(model_dir, step, suffix)
    digest = _sha256(data)
    if path.exists():
        problem = verify_prompt(path)
        if problem is None and _sha256(path.read_bytes()) == digest:
            return path
        reject(model_dir, path, problem or f"step {step} was recomputed and differs from it")
    # The digest goes first: an interrupted write leaves a digest without its file, never a
    # file without its digest.
    _write_atomic(_checksum_path(path), f"{digest}  {path.name}\n".encode())
    _write_atomic(path, data)
    return path


def saved_prompt_steps(model_dir: str | os.PathLike) -> list[int]:
    """Steps for which a prompt `.npy` (or `.npz`) exists, ascending."""
    directory = epath.Path(model_dir) / PROMPT_DIR
    if not directory.exists():
        return []
    matches = (_PROMPT_NAME.match(p.name) for p in directory.iterdir())
    return sorted(int(m.group(1)) for m in matches if m)


# -------------------------------------------------------------------- state


def _step_dirs(state_dir: epath.Path) -> list[int]:
    """Committed step directories (Orbax's temporary ones are not digits only)."""
    if not state_dir.exists():
        return []
    return sorted(int(p.name) for p in state_dir.iterdir() if p.name.isdigit() and p.is_dir())


def _files_under(directory: epath.Path) -> list[epath.Path]:
    """Every file below `directory` (epath has no recursive glob)."""
    files = []
    for child in directory.iterdir():
        files.extend(_files_under(child) if child.is_dir() else [child])
    return files


def write_state_manifest(step_dir: epath.Path) -> None:
    """Records the digest of every file of a committed state step."""
    files = sorted(p for p in _files_under(step_dir) if p.name != STATE_MANIFEST)
    lines = (f"{_sha256(p.read_bytes())}  {p.relative_to(step_dir).as_posix()}\n" for p in files)
    _write_atomic(step_dir / STATE_MANIFEST, "".join(lines).encode())


def verify_state_step(step_dir: str | os.PathLike) -> str | None:
    """None if every file listed in the step's manifest is present and intact, else why not."""
    step_dir = epath.Path(step_dir)
    manifest = step_dir / STATE_MANIFEST
    if not manifest.exists():
        return f"no {STATE_MANIFEST}: the run stopped before the step was verified"
    try:
        sums = _parse_sums(manifest.read_text())
    except ValueError as e:
        return f"{STATE_MANIFEST} is unreadable: {e}"
    if not sums:
        return f"{STATE_MANIFEST} lists no files"
    return _check_sums(step_dir, sums)


class DataPosition(Protocol):
    """An input pipeline whose position is files in a folder (`input_pipeline.TrainBatches`)."""

    checkpointable: bool

    def save(self, directory: str) -> None: ...

    def restore(self, directory: str) -> None: ...

    def skip(self, batches: int) -> None: ...


class DataIteratorHandler(ocp.CheckpointHandler):
    """Orbax item of a pipeline's position: each process writes (and reads) its own files."""

    def save(self, directory: epath.Path, args: DataIteratorArgs) -> None:
        args.batches.save(os.fspath(directory))

    def restore(self, directory: epath.Path, args: DataIteratorArgs) -> None:
        args.batches.restore(os.fspath(directory))


@ocp.args.register_with_handler(DataIteratorHandler, for_save=True, for_restore=True)
@dataclasses.dataclass
class DataIteratorArgs(ocp.args.CheckpointArgs):
    batches: DataPosition


DATA_ITERATOR = "data_iterator"


class StateMismatchError(CheckpointError):
    """An intact state step whose structure differs from the run's train state."""


# States saved before prompt training and full training shared one `TrainState`
# (issue #19) named the prompt run's trainable part `prompt`; they restore as `params`.
LEGACY_FIELDS = {"prompt": "params"}


class StateCheckpointer:
    """Orbax-backed save / restore of the resumable train state.

    The state pytree holds the prompt, its optimizer state and the step; the
    data position (examples consumed) is saved beside it as JSON and, when the
    pipeline can be checkpointed, as its iterators' states, so the input
    pipeline resumes exactly where it stopped without replaying it. Saves are
    synchronous (the state is small) so that each step's manifest is written
    as soon as Orbax has committed it.
    """

    def __init__(self, model_dir: str | os.PathLike, max_to_keep: int | None = 3):
        # Orbax accepts only absolute paths; a relative MODEL_DIR is the user's cwd.
        self._model_dir = epath.Path(paths.normalize(model_dir))
        self._directory = self._model_dir / STATE_DIR
        self._manager = ocp.CheckpointManager(
            self._directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                create=True,
                enable_async_checkpointing=False,
                # Temporary directories are writes that a kill interrupted.
                cleanup_tmp_directories=True,
            ),
        )

    def save(
        self,
        step: int,
        state: Any,
        data_position: dict[str, int],
        batches: DataPosition | None = None,
    ) -> None:
        """Saves `state` and the data position (with `batches`' iterators when it can) as `step`."""
        items = {"state": ocp.args.StandardSave(state), "data": ocp.args.JsonSave(data_position)}
        if batches is not None and batches.checkpointable:
            items[DATA_ITERATOR] = DataIteratorArgs(batches)
        self._manager.save(step, args=ocp.args.Composite(**items))
        self._manager.wait_until_finished()
        if jax.process_index() == 0:
            write_state_manifest(self._directory / str(step))

    def last_good_step(self) -> int | None:
        """The newest step whose files all verify: where a resumed run would start."""
        good = [
            s
            for s in _step_dirs(self._directory)
            if not verify_state_step(self._directory / str(s))
        ]
        return good[-1] if good else None

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, int]]:
        """Restores `step` into the structure, shardings and dtypes of `abstract_state`."""
        problem = verify_state_step(self._directory / str(step))
        if problem:
            raise CheckpointError(
                f"State step {self._directory / str(step)} failed verification: {problem}."
            )
        return self._restore_verified(step, abstract_state)

    def _restore_verified(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, int]]:
        legacy = self._legacy_layout(step, abstract_state)
        target = abstract_state if legacy is None else legacy
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore()
                ),
            )
        except Exception as e:  # Orbax raises many types, for damage and for a mismatch alike
            if self._readable(step):
                # Intact files that do not fit this run's state (another optimizer or
                # prompt shape) are the caller's mistake: never a reason to move them.
                raise StateMismatchError(
                    f"State step {self._directory / str(step)} is intact but does not fit "
                    f"this run's train state ({e!r}); nothing was moved."
                ) from e
            raise CheckpointError(f"Orbax could not restore it: {e!r}") from e
        state = restored["state"]
        if legacy is not None:
            state = abstract_state.replace(**{LEGACY_FIELDS.get(k, k): v for k, v in state.items()})
        return state, dict(restored["data"])

    def _legacy_layout(self, step: int, abstract_state: Any) -> dict[str, Any] | None:
        """`abstract_state` as a dict with the saved step's older field names, if it has them."""
        if not dataclasses.is_dataclass(abstract_state):
            return None
        try:
            saved = self._manager.item_metadata(step)["state"]
            saved = getattr(saved, "tree", saved)  # TreeMetadata wraps the saved tree
        except Exception:  # unreadable metadata: the restore itself reports the damage
            return None
        names = {new: old for old, new in LEGACY_FIELDS.items() if old in (saved or {})}
        if not names:
            return None
        fields = {
            f.name: getattr(abstract_state, f.name) for f in dataclasses.fields(abstract_state)
        }
        return {names.get(name, name): value for name, value in fields.items()}

    def restore_data_position(self, step: int, batches: DataPosition) -> bool:
        """Moves `batches` to where the run was at `step`; False if that step has no position.

        A step saved without iterator states (a pipeline tf.data cannot
        checkpoint, or a run of an earlier version) leaves `batches` untouched.
        """
        if not batches.checkpointable or not (self._directory / str(step) / DATA_ITERATOR).is_dir():
            return False
        self._manager.restore(
            step, args=ocp.args.Composite(**{DATA_ITERATOR: DataIteratorArgs(batches)})
        )
        return True

    def restore_saved(self, step: int) -> Any:
        """The train state of `step` as saved (nested dicts of host arrays), with no target."""
        restored = self._manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore())
        )
        return restored["state"]

    def _readable(self, step: int) -> bool:
        """Whether Orbax can read `step` as saved, with no target structure."""
        try:
            self.restore_saved(step)
        except Exception:  # any failure: the files themselves are unreadable
            return False
        return True

    def restore_latest_good(self, abstract_state: Any) -> tuple[int, Any, dict[str, int]] | None:
        """Restores the newest step that verifies, rejecting (and logging) every newer one.

        A step is moved aside only when its files fail their digests or Orbax
        cannot read them; an intact step that does not fit `abstract_state`
        raises `StateMismatchError`.

        Returns (step, state, data position), or None when no step is usable.
        """
        for step in reversed(_step_dirs(self._directory)):
            step_dir = self._directory / str(step)
            problem = verify_state_step(step_dir)
            if problem is None:
                try:
                    return (step, *self._restore_verified(step, abstract_state))
                except StateMismatchError:
                    raise
                except CheckpointError as e:
                    problem = str(e)
            if jax.process_index() == 0:
                reject(self._model_dir, step_dir, problem)
            self._manager.reload()
        return None

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()


def resume_data_position(
    checkpointer: StateCheckpointer,
    step: int,
    batches: DataPosition,
    print_fn: Callable[[str], None],
) -> None:
    """Puts `batches` where the run stood after `step` steps (nothing to do at 0).

    From the iterator states saved with the step when it has them; otherwise (a
    Python-generator source, or a state of an earlier version) by skipping the
    consumed batches, which costs time in proportion to `step`.
    """
    if step and not checkpointer.restore_data_position(step, batches):
        print_fn(
            f"Skipping the {step} batches consumed before step {step}: its state holds no "
            "data iterator (the input pipeline cannot be checkpointed, or an older run saved it)."
        )
        batches.skip(step)


# Errors of a full or read-only disk: the run cannot go on, but what it saved before is good.
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def _disk_error(error: BaseException | None) -> str | None:
    """What a full or read-only disk said behind `error` (Orbax and TF wrap it), if anything."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
            return f"{error.strerror} ({error.filename})" if error.filename else error.strerror
        # C++ writers (tensorstore, TensorFlow) report the errno only as its text.
        texts = [os.strerror(code) for code in _DISK_ERRNOS if os.strerror(code) in str(error)]
        if texts:
            return str(error)
        error = error.__cause__ or error.__context__
    return None


@contextlib.contextmanager
def disk_errors(model_dir: str | os.PathLike, checkpointer: StateCheckpointer) -> Iterator[None]:
    """Turns a full or read-only disk under the `with` block into one `CheckpointError`.

    Whatever a failed save left half-written stays out of a resumed run's way:
    Orbax removes its uncommitted temporary directory on the next start, a step
    without its manifest is rejected, and a prompt's temporary file is deleted.
    """
    try:
        yield
    except Exception as e:
        cause = _disk_error(e)
        if cause is None:
            raise
        good = checkpointer.last_good_step()
        raise CheckpointError(
            f"Writing to MODEL_DIR {model_dir} failed: {cause}. The last good state "
            f"(step {'none yet' if good is None else good}) is kept; free space or make "
            "MODEL_DIR writable, then re-run the same command to resume from it."
        ) from e
