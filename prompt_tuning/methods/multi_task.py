"""Multi-task prompts: one prompt shared by every task plus a part of each task's own.

The trainable parameters are a shared `[P, d]` prompt (P = PROMPT_LENGTH, from
the configured prompt init) and, per task, a part composed with it:

- `concat`: task rows `[T, P_t, d]` (each from the configured init) follow the
  shared rows; task t's prompt is `[P + P_t, d]`.
- `add`: task offsets `[T, P, d]`, zero at first; prompt_t = shared + task_t.
- `mpt`: the low-rank multiplicative form of MPT (Wang et al. 2023), prompt_t =
  shared * (u_t @ v_t) with `u [T, P, r]` and `v [T, r, d]`. The product starts
  at all-ones: the first rank component is `u = 1, v = 1`, the others start with
  `u = 0` and `v ~ N(0, 1)`, so they begin at zero yet get gradient (all-ones
  factors would move in lockstep and never leave rank 1).

With `add` and `mpt` every task starts from the shared prompt itself.

A training batch of a mixture carries `task_index [batch]` (each example's
position in `tasks`), and each example reads its own task's prompt. Exported,
the method is one composed prompt per task, `task_prompts [T, P_total, d]`,
with their names `task_names [T]`; evaluation gives every task its own row
(`task_inputs`), so a task's row used as a plain `[P, d]` prompt scores the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning.errors import InputError
from prompt_tuning.methods.base import (
    MULTI_TASK_ARRAYS,
    Batch,
    InitContext,
    Method,
    ModelInputs,
    Params,
)

COMPOSITIONS = ("concat", "add", "mpt")
TASK_INDEX = "task_index"  # batch feature: `[batch]` int32, the example's index in `tasks`
TASK_PROMPTS, TASK_NAMES = MULTI_TASK_ARRAYS  # file arrays: `[T, P, d]` prompts, `[T]` names


def _check_composition(composition: str) -> None:
    if composition not in COMPOSITIONS:
        raise InputError(
            f"Unknown multi-task composition {composition!r}; choose one of {COMPOSITIONS}."
        )


def compose(params: Params, composition: str) -> jax.Array:
    """Every task's prompt: `[T, P_total, d]` from the shared prompt and the task parts."""
    _check_composition(composition)
    shared = params["shared"]
    if composition == "concat":
        task = params["task"]
        return jnp.concatenate([jnp.broadcast_to(shared, (len(task), *shared.shape)), task], 1)
    if composition == "add":
        return shared + params["task"]
    return shared * (params["u"] @ params["v"])  # mpt


@dataclasses.dataclass(frozen=True)
class MultiTaskPrompts:
    """A shared prompt and one part per task in `tasks` (empty: the run's sub-tasks)."""

    tasks: tuple[str, ...] = ()
    composition: str = "concat"
    task_length: int | None = None  # concat: rows of each task's part (None: PROMPT_LENGTH)
    rank: int = 1  # mpt: rank of each task's multiplier

    def init(self, rng: jax.Array, context: InitContext) -> Params:
        if not self.tasks:
            raise InputError(
                "MultiTaskPrompts.tasks is empty: name the tasks (or train on a mixture)."
            )
        _check_composition(self.composition)
        num_tasks, length, d = len(self.tasks), context.length, context.config.d_model
        shared_rng, task_rng = jax.random.split(rng)
        shared = context.prompt_init(shared_rng, (length, d))
        if self.composition == "add":
            return {"shared": shared, "task": jnp.zeros((num_tasks, length, d))}
        if self.composition == "concat":
            rows = self.task_length or length
            parts = [
                context.prompt_init(jax.random.fold_in(task_rng, t), (rows, d))
                for t in range(num_tasks)
            ]
            return {"shared": shared, "task": jnp.stack(parts)}
        if self.rank < 1:
            raise InputError(f"MultiTaskPrompts.rank must be >= 1, got {self.rank}.")
        first = jnp.arange(self.rank) == 0
        u = jnp.broadcast_to(first.astype(jnp.float32), (num_tasks, length, self.rank))
        noise = jax.random.normal(task_rng, (num_tasks, self.rank, d))
        v = jnp.where(first[:, None], 1.0, noise)
        return {"shared": shared, "u": u, "v": v}

    def model_inputs(self, params: Params, batch: Batch | None = None) -> ModelInputs:
        """`prompt [batch, P, d]` (each example its task's) for a batch with `task_index`.

        Without a batch: what the method exports, `task_prompts [T, P, d]` and
        `task_names [T]`.
        """
        prompts = compose(params, self.composition)
        if batch is None:
            return {TASK_PROMPTS: prompts, TASK_NAMES: np.asarray(list(self.tasks), np.str_)}
        if TASK_INDEX not in batch:
            raise InputError(
                f"MultiTaskPrompts needs each example's {TASK_INDEX!r} in the batch; "
                f"the batch holds {sorted(batch)}."
            )
        return {"prompt": prompts[batch[TASK_INDEX]]}


def bind_tasks(method: Method, task_names: Sequence[str]) -> Method:
    """The method a run over `task_names` (its mixture's sub-tasks) trains.

    A `MultiTaskPrompts` without tasks gets `task_names`; one with tasks must
    name every one of them. Other methods are returned as they are.

    Raises:
      ValueError: naming the sub-tasks the method has no prompt for.
    """
    if not isinstance(method, MultiTaskPrompts):
        return method
    if not method.tasks:
        return dataclasses.replace(method, tasks=tuple(task_names))
    missing = [name for name in task_names if name not in method.tasks]
    if missing:
        raise InputError(
            f"MultiTaskPrompts.tasks {list(method.tasks)} has no prompt for {missing}, "
            "which the run's mixture holds: add them or leave MultiTaskPrompts.tasks empty."
        )
    return method


def example_tasks(method: Method) -> tuple[str, ...] | None:
    """The task names a batch's `task_index` refers to, for methods that read it."""
    return tuple(method.tasks) if isinstance(method, MultiTaskPrompts) else None


def task_inputs(
    stack: Mapping[str, jax.Array] | jax.Array | None, task: str
) -> Mapping[str, jax.Array] | jax.Array | None:
    """Stacked model inputs for one task: a multi-task stack's row of `task`, else `stack`.

    Args:
      stack: `{task_prompts: [N, T, P, d], task_names: [N, T]}` from N
        multi-task files, or any other stack (returned as it is).
      task: the task to evaluate.

    Returns:
      `{"prompt": [N, P, d]}`, each file's prompt for `task`.

    Raises:
      ValueError: when a file holds no prompt for `task`.
    """
    if not isinstance(stack, Mapping) or TASK_PROMPTS not in stack:
        return stack
    names = np.asarray(stack[TASK_NAMES]).tolist()
    missing = [file_names for file_names in names if task not in file_names]
    if missing:
        raise InputError(
            f"The multi-task prompt holds prompts for tasks {missing[0]}, not for {task!r}: "
            "evaluate one of those tasks, or a mixture of them."
        )
    rows = np.asarray([file_names.index(task) for file_names in names])
    return {"prompt": stack[TASK_PROMPTS][np.arange(len(rows)), rows]}
