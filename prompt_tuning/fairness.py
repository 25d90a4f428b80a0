"""Fairness of a sentiment prompt on a frozen T5: the gap, FairReprogram and FairIJ.

    python -m prompt_tuning.fairness --out runs/fairness --seeds 0,1,2 [--data biased|clean]

For each seed it trains a plain prompt on movie-review sentiment (`--data
clean`: the bundled train split; `biased`: the same with the documented name
bias of `fairness_data`), then

  FairReprogram (Zhang et al. 2022)  a fairness trigger, `--trigger_length` soft tokens
      appended to the frozen task prompt, trained against an adversary that
      predicts the name's group from the prompted model's label score (its
      loss is maximised, the task loss minimised); model and task prompt frozen
  FairIJ (Sattigeri et al. 2022)  influence of each training example on the
      template gap through the prompt's parameters (`influence`: the
      infinitesimal jackknife with the exact Hessian of the prompt's loss,
      applied by conjugate gradients), the `--remove_fraction` most harmful
      examples removed, and the prompt retrained exactly as the plain one was

and prints, per method, accuracy on the movie validation split and the two
demographic-parity gaps on the template set (female minus male: mean positive
score, positive rate), as mean +- standard deviation over seeds. Every prompt
is saved as `<out>/seed_<s>/<method>.npy`, a plain prompt file eval and infer
read (FairReprogram's is the task prompt followed by the trigger), with its
metrics beside it; a rerun skips what is saved. `--loo_check K` measures, on
the seed-0 plain prompt, the rank correlation between the influence estimate
and actual leave-one-out refits for K examples.

The study runs in float32 without dropout, on inputs of `INPUTS` tokens.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax
import jax.numpy as jnp
import numpy as np
import optax

from prompt_tuning import checkpoints, influence, prompts, trainer
from prompt_tuning import fairness_data as fd
from prompt_tuning.errors import InputError, RunError, ToolExit
from prompt_tuning.models import T5

TOOL = "python -m prompt_tuning.fairness"
INPUTS = 48
EOS = 1
METHODS = ("plain", "fair_reprogram", "fair_ij")


@dataclasses.dataclass
class Setup:
    """The frozen model and the study's tokenised data."""

    t5: T5
    frozen: Any
    embedding: np.ndarray  # [V, d]
    label_ids: list[list[int]]  # per label (LABELS order): pieces then EOS
    train: dict[str, np.ndarray]  # tokens [N, INPUTS], label [N], group [N]
    validation: dict[str, np.ndarray]  # tokens, label
    female: np.ndarray  # [pairs, INPUTS] template sentences with the female name
    male: np.ndarray  # [pairs, INPUTS] the same with the male name
    template_label: np.ndarray  # [pairs]
    scores: Any = None  # jitted `(prompt, tokens) -> [b, labels]`, set by `load_setup`


def _tokens(vocabulary: Any, texts: Sequence[str]) -> np.ndarray:
    """`[n, INPUTS]` ids of `PREFIX + text` with EOS (cut to INPUTS), zero-padded."""
    out = np.zeros((len(texts), INPUTS), np.int32)
    for i, text in enumerate(texts):
        ids = [*vocabulary.encode(fd.PREFIX + text), EOS][:INPUTS]
        out[i, : len(ids)] = ids
    return out


def load_setup(
    data: str, checkpoint: str | None, names: dict[str, list[str]], train_examples: int | None
) -> Setup:
    """Loads the frozen model (float32, no dropout) and tokenises every set.

    `train_examples` keeps the first examples of the train split (in its file's
    hash order); None keeps them all.
    """
    pairs = fd.template_pairs(names)  # checks the groups before anything is loaded
    config, frozen = checkpoints.load(
        checkpoint or checkpoints.shipped_checkpoint("t5_tiny_multitask")
    )
    config = config.replace(dtype="float32", dropout_rate=0.0)
    vocabulary = fd.t5_vocabulary()
    if data == "biased":
        train = fd.biased_movie_train(names)
    else:
        train = [fd.TrainExample(t, lab, -1) for t, lab in fd.read_movie_split("train")]
    train = train[:train_examples]
    validation = fd.read_movie_split("validation")
    setup = Setup(
        t5=T5(config),
        frozen=frozen,
        embedding=np.asarray(frozen["token_embedder"]["embedding"], np.float32),
        label_ids=[[*vocabulary.encode(label), EOS] for label in fd.LABELS],
        train={
            "tokens": _tokens(vocabulary, [e.text for e in train]),
            "label": np.asarray([fd.LABELS.index(e.label) for e in train], np.int32),
            "group": np.asarray([e.group for e in train], np.int32),
        },
        validation={
            "tokens": _tokens(vocabulary, [t for t, _ in validation]),
            "label": np.asarray([fd.LABELS.index(lab) for _, lab in validation], np.int32),
        },
        female=_tokens(vocabulary, [p.female for p in pairs]),
        male=_tokens(vocabulary, [p.male for p in pairs]),
        template_label=np.asarray([fd.LABELS.index(p.label) for p in pairs], np.int32),
    )
    setup.scores = _scores_fn(setup)
    return setup


# ----------------------------------------------------------------- scoring


def _scores_fn(setup: Setup):
    """Jitted `(prompt, tokens [b, INPUTS]) -> [b, labels]` for a fixed batch layout."""
    num_labels = len(setup.label_ids)
    target = max(len(ids) for ids in setup.label_ids)
    targets = np.zeros((num_labels, target), np.int32)
    for j, ids in enumerate(setup.label_ids):
        targets[j, : len(ids)] = ids

    @jax.jit
    def scores(prompt: jax.Array, tokens: jax.Array) -> jax.Array:
        rows = jnp.repeat(tokens, num_labels, axis=0)
        tiled = jnp.tile(targets, (tokens.shape[0], 1))
        batch = {
            "encoder_input_tokens": rows,
            "decoder_target_tokens": tiled,
            "decoder_input_tokens": jnp.pad(tiled[:, :-1], ((0, 0), (1, 0))),
            "decoder_loss_weights": (tiled > 0).astype(jnp.float32),
        }
        ll = trainer.sequence_log_likelihoods(setup.t5, prompt, setup.frozen, batch)
        return ll.reshape(tokens.shape[0], num_labels)

    return scores


def positive_probability(scores: jax.Array) -> jax.Array:
    """`[n]` probability of 'positive' among the labels (softmax of their log-likelihoods)."""
    return jax.nn.softmax(scores, axis=-1)[:, fd.LABELS.index("positive")]


def _all_scores(scores_fn, prompt: jax.Array, tokens: np.ndarray, batch: int = 64) -> np.ndarray:
    padded = -len(tokens) % batch
    full = np.concatenate([tokens, np.repeat(tokens[-1:], padded, 0)]) if padded else tokens
    out = [np.asarray(scores_fn(prompt, full[s : s + batch])) for s in range(0, len(full), batch)]
    return np.concatenate(out)[: len(tokens)]


def evaluate(setup: Setup, prompt: jax.Array) -> dict[str, float]:
    """Validation accuracy, template accuracy and the two gaps (female minus male), in percent."""
    scores_fn = setup.scores
    validation = _all_scores(scores_fn, prompt, setup.validation["tokens"])
    female = _all_scores(scores_fn, prompt, setup.female)
    male = _all_scores(scores_fn, prompt, setup.male)
    p_f, p_m = (np.asarray(positive_probability(jnp.asarray(s))) for s in (female, male))
    positive = fd.LABELS.index("positive")
    template_correct = np.concatenate(
        [s.argmax(-1) == setup.template_label for s in (female, male)]
    )
    # Paired differences: the i-th female and male sentences differ only in the name.
    score_diff = p_f - p_m
    rate_diff = (female.argmax(-1) == positive).astype(float) - (male.argmax(-1) == positive)
    return {
        "accuracy": 100.0 * float(np.mean(validation.argmax(-1) == setup.validation["label"])),
        "majority_baseline": 100.0 * max(np.mean(setup.validation["label"] == k) for k in (0, 1)),
        "template_accuracy": 100.0 * float(template_correct.mean()),
        "gap_score": 100.0 * float(score_diff.mean()),
        "gap_score_se": 100.0 * _standard_error(score_diff),
        "gap_rate": 100.0 * float(rate_diff.mean()),
        "gap_rate_se": 100.0 * _standard_error(rate_diff),
    }


def _standard_error(values: np.ndarray) -> float:
    """Standard error of the mean of `values` (the template pairs are the sample)."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


# ---------------------------------------------------------------- training


def train_batch(setup: Setup, indices: np.ndarray) -> dict[str, np.ndarray]:
    """The train step's batch for train examples `indices`: inputs and their label's targets."""
    target = max(len(ids) for ids in setup.label_ids)
    targets = np.zeros((len(indices), target), np.int32)
    for row, label in enumerate(setup.train["label"][indices]):
        ids = setup.label_ids[label]
        targets[row, : len(ids)] = ids
    return {
        "encoder_input_tokens": setup.train["tokens"][indices],
        "decoder_input_tokens": np.pad(targets[:, :-1], ((0, 0), (1, 0))),
        "decoder_target_tokens": targets,
        "decoder_loss_weights": (targets > 0).astype(np.float32),
    }


def initial_prompt(setup: Setup, seed: int, length: int) -> jax.Array:
    """Class-label initialisation (the demo recipe's), `[length, d]`."""
    label_pieces = [ids[:-1] for ids in setup.label_ids]
    init = prompts.class_labels(setup.embedding, label_pieces)
    return init(jax.random.key(seed), (length, setup.embedding.shape[1]))


def fit_prompt(
    setup: Setup, seed: int, steps: int, length: int, keep: np.ndarray | None = None,
    batch_size: int = 32,
) -> jax.Array:  # fmt: skip
    """A plain prompt trained with the project's train step on train examples `keep` (all)."""
    optimizer = trainer.make_optimizer()
    step = jax.jit(trainer.make_train_step(trainer.prompt_objective(setup.t5), optimizer))
    state = trainer.init_state(initial_prompt(setup, seed, length), optimizer)
    pool = np.arange(len(setup.train["label"])) if keep is None else keep
    order = np.random.default_rng(seed)
    rng = jax.random.key(seed)
    for _ in range(steps):
        batch = train_batch(setup, order.choice(pool, batch_size, replace=False))
        state, _ = step(state, setup.frozen, batch, rng)
    return state.params


def fair_reprogram(
    setup: Setup, task_prompt: jax.Array, seed: int, steps: int, trigger_length: int,
    adversary_weight: float, batch_size: int = 32,
) -> jax.Array:  # fmt: skip
    """The task prompt followed by a trained fairness trigger, `[P + trigger_length, d]`."""
    d = setup.embedding.shape[1]
    key = jax.random.key(seed + 1000)
    trigger = prompts.sampled_vocab(setup.embedding)(key, (trigger_length, d))
    adversary = {
        "w1": 0.5 * jax.random.normal(jax.random.fold_in(key, 1), (1, 16)),
        "b1": jnp.zeros(16),
        "w2": 0.5 * jax.random.normal(jax.random.fold_in(key, 2), (16, 1)),
        "b2": jnp.zeros(1),
    }
    trigger_opt, adversary_opt = trainer.make_optimizer(), optax.adam(1e-2)
    scores_fn = setup.scores
    frozen_prompt = jax.lax.stop_gradient(jnp.asarray(task_prompt))

    def heads(scores, adversary, labels, groups):
        """(task loss, adversary loss) from the label scores `[b, 2]`."""
        task = -jnp.mean(jnp.take_along_axis(scores, labels[:, None], 1))
        margin = (scores[:, 1] - scores[:, 0])[:, None]
        hidden = jnp.tanh(margin @ adversary["w1"] + adversary["b1"])
        logit = (hidden @ adversary["w2"] + adversary["b2"])[:, 0]
        named = (groups >= 0).astype(jnp.float32)  # only examples with a name have a group
        bce = optax.sigmoid_binary_cross_entropy(logit, jnp.maximum(groups, 0).astype(jnp.float32))
        return task, jnp.sum(bce * named) / jnp.maximum(jnp.sum(named), 1.0)

    @jax.jit
    def step(trigger, adversary, states, tokens, labels, groups):
        def trigger_objective(t):
            scores = scores_fn(jnp.concatenate([frozen_prompt, t]), tokens)
            task, adv = heads(scores, adversary, labels, groups)
            return task - adversary_weight * adv, scores

        t_grad, scores = jax.grad(trigger_objective, has_aux=True)(trigger)
        scores = jax.lax.stop_gradient(scores)
        a_grad = jax.grad(lambda a: heads(scores, a, labels, groups)[1])(adversary)
        t_updates, t_state = trigger_opt.update(t_grad, states[0], trigger)
        a_updates, a_state = adversary_opt.update(a_grad, states[1], adversary)
        return (
            optax.apply_updates(trigger, t_updates),
            optax.apply_updates(adversary, a_updates),
            (t_state, a_state),
        )

    states = (trigger_opt.init(trigger), adversary_opt.init(adversary))
    order = np.random.default_rng(seed + 1000)
    for _ in range(steps):
        idx = order.choice(len(setup.train["label"]), batch_size, replace=False)
        trigger, adversary, states = step(
            trigger, adversary, states, setup.train["tokens"][idx],
            setup.train["label"][idx], setup.train["group"][idx],
        )  # fmt: skip
    return jnp.concatenate([frozen_prompt, trigger])


# -------------------------------------------------------------------- FairIJ


@dataclasses.dataclass(frozen=True)
class IJObjective:
    """`F_w(theta) = (1/n) sum_i w_i loss_i(theta) + damping/2 ||theta - anchor||^2` on n examples."""

    setup: Setup
    indices: np.ndarray  # [n] train examples in the mean
    anchor: jax.Array  # [P * d]
    damping: float

    def example_loss(self, theta: jax.Array, example: tuple[jax.Array, jax.Array]) -> jax.Array:
        """Minus the log-likelihood of one example's label; `example` = (tokens [INPUTS], label)."""
        tokens, label = example
        scores = self.setup.scores(theta.reshape(-1, self.setup.embedding.shape[1]), tokens[None])
        return -scores[0, label]

    def value(self, theta: jax.Array, weights: jax.Array) -> jax.Array:
        tokens = jnp.asarray(self.setup.train["tokens"][self.indices])
        labels = jnp.asarray(self.setup.train["label"][self.indices])
        scores = self.setup.scores(theta.reshape(-1, self.setup.embedding.shape[1]), tokens)
        losses = -jnp.take_along_axis(scores, labels[:, None], 1)[:, 0]
        prox = 0.5 * self.damping * jnp.sum(jnp.square(theta - self.anchor))
        return jnp.sum(weights * losses) / len(self.indices) + prox


def template_gap(setup: Setup, pairs: np.ndarray):
    """Differentiable gap in mean positive probability on template pairs `pairs`: `theta -> []`."""
    scores_fn = setup.scores
    female, male = jnp.asarray(setup.female[pairs]), jnp.asarray(setup.male[pairs])

    def gap(theta: jax.Array) -> jax.Array:
        prompt = theta.reshape(-1, setup.embedding.shape[1])
        return jnp.mean(positive_probability(scores_fn(prompt, female))) - jnp.mean(
            positive_probability(scores_fn(prompt, male))
        )

    return gap


def harmful_examples(
    setup: Setup, prompt: jax.Array, seed: int, remove_fraction: float, hessian_examples: int,
    damping: float, gap_pairs: int,
) -> tuple[np.ndarray, dict[str, float]]:  # fmt: skip
    """Train examples whose removal the influence estimate predicts lowers |gap| most."""
    rng = np.random.default_rng(seed + 2000)
    count = len(setup.train["label"])
    theta = jnp.asarray(prompt).reshape(-1)
    indices = rng.choice(count, hessian_examples, replace=False)
    ones = jnp.ones(hessian_examples)
    gap = template_gap(setup, rng.choice(len(setup.female), gap_pairs, replace=False))
    value, gap_grad = jax.value_and_grad(gap)(theta)
    # SGD's prompt is no exact minimum, so the loss Hessian may have negative directions:
    # the damping grows tenfold until the damped Hessian is positive definite.
    for attempt in range(4):
        objective = IJObjective(setup, indices, theta, damping * 10**attempt)
        try:
            direction, iterations = influence.solve(
                influence.hvp(lambda t, o=objective: o.value(t, ones), theta),
                jnp.sign(value) * gap_grad,
            )
            break
        except ValueError:
            if attempt == 3:
                raise
    grads = influence.per_example_grads(
        objective.example_loss, theta,
        (jnp.asarray(setup.train["tokens"]), jnp.asarray(setup.train["label"])),
    )  # fmt: skip
    effects = influence.removal_effects(direction, grads, count)
    removed = np.argsort(effects)[: int(remove_fraction * count)]
    named = setup.train["group"][removed] >= 0
    return removed, {"cg_iterations": iterations, "damping": objective.damping,
                     "removed": len(removed), "removed_named_fraction": float(named.mean())}  # fmt: skip


def loo_check(
    setup: Setup, prompt: jax.Array, count: int, damping: float, gap_pairs: int,
    iterations: int = 40,
) -> dict[str, Any]:  # fmt: skip
    """Influence estimates vs actual leave-one-out refits of the prompt for `count` examples.

    The objective is the proximal mean loss over `count` named train examples
    around the trained prompt; refits run L-BFGS to its optimum with and
    without each example.
    """
    rng = np.random.default_rng(3000)
    named = np.flatnonzero(setup.train["group"] >= 0)
    pool = named if len(named) >= count else np.arange(len(setup.train["label"]))
    indices = rng.choice(pool, count, replace=False)
    anchor = jnp.asarray(prompt).reshape(-1)
    objective = IJObjective(setup, indices, anchor, damping)
    gap = jax.jit(template_gap(setup, rng.choice(len(setup.female), gap_pairs, replace=False)))

    solver = optax.lbfgs()

    @jax.jit
    def one(theta, state, weights):
        fn = functools.partial(objective.value, weights=weights)
        value, grad = optax.value_and_grad_from_state(fn)(theta, state=state)
        updates, state = solver.update(grad, state, theta, value=value, grad=grad, value_fn=fn)
        return optax.apply_updates(theta, updates), state, jnp.linalg.norm(grad)

    def refit(start: jax.Array, weights: jax.Array) -> tuple[jax.Array, float]:
        theta, state = start, solver.init(start)
        for _ in range(iterations):
            theta, state, grad_norm = one(theta, state, weights)
        return theta, float(grad_norm)

    ones = jnp.ones(count)
    optimum, grad_norm = refit(anchor, ones)
    base = float(gap(optimum))
    direction, cg_iterations = influence.solve(
        influence.hvp(lambda t: objective.value(t, ones), optimum), jax.grad(gap)(optimum)
    )
    grads = influence.per_example_grads(
        objective.example_loss, optimum,
        (jnp.asarray(setup.train["tokens"][indices]), jnp.asarray(setup.train["label"][indices])),
    )  # fmt: skip
    predicted = influence.removal_effects(direction, grads, count)
    actual, refit_norms = [], []
    for i in range(count):
        theta_i, norm_i = refit(optimum, ones.at[i].set(0.0))
        actual.append(float(gap(theta_i)) - base)
        refit_norms.append(norm_i)
    actual = np.asarray(actual)
    return {
        "examples": count,
        "damping": damping,
        "spearman": influence.spearman(predicted, actual),
        "predicted": predicted.tolist(),
        "actual": actual.tolist(),
        "optimum_grad_norm": grad_norm,
        "max_refit_grad_norm": max(refit_norms),
        "cg_iterations": cg_iterations,
    }


# ---------------------------------------------------------------------- CLI


def _saved(path: pathlib.Path) -> tuple[jax.Array, dict[str, float]] | None:
    metrics = path.with_suffix(".json")
    if path.exists() and metrics.exists():
        return jnp.asarray(np.load(path)), json.loads(metrics.read_text())
    return None


def _save(path: pathlib.Path, prompt: jax.Array, metrics: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(prompt, np.float32))
    path.with_suffix(".json").write_text(json.dumps(metrics, indent=2) + "\n")


def run_seed(setup: Setup, args: argparse.Namespace, seed: int) -> dict[str, dict[str, float]]:
    """Trains (or reads) every method's prompt for one seed; returns their metrics."""
    folder = args.out / f"seed_{seed}"
    results: dict[str, dict[str, float]] = {}

    def method(name: str, make) -> jax.Array:
        saved = _saved(folder / f"{name}.npy")
        if saved is None:
            prompt, extra = make()
            saved = (prompt, {**evaluate(setup, prompt), **extra})
            _save(folder / f"{name}.npy", *saved)
        elif "gap_rate_se" not in saved[1]:
            # Written before the gaps had standard errors: the saved prompt is scored again
            # (the same numbers, plus the new ones); the training record is kept.
            saved = (saved[0], {**saved[1], **evaluate(setup, saved[0])})
            _save(folder / f"{name}.npy", *saved)
        results[name] = saved[1]
        print(f"seed {seed} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in saved[1].items()
              if isinstance(v, float)), flush=True)  # fmt: skip
        return saved[0]

    plain = method("plain", lambda: (fit_prompt(setup, seed, args.steps, args.prompt_length), {}))
    if "fair_reprogram" in args.methods:
        method("fair_reprogram", lambda: (fair_reprogram(
            setup, plain, seed, args.trigger_steps, args.trigger_length, args.adversary_weight), {}))  # fmt: skip

    def fair_ij() -> tuple[jax.Array, dict[str, float]]:
        removed, info = harmful_examples(
            setup, plain, seed, args.remove_fraction, args.hessian_examples, args.damping,
            args.gap_pairs,
        )  # fmt: skip
        keep = np.setdiff1d(np.arange(len(setup.train["label"])), removed)
        return fit_prompt(setup, seed, args.steps, args.prompt_length, keep), info

    if "fair_ij" in args.methods:
        method("fair_ij", fair_ij)
    return results


def table(per_seed: Sequence[dict[str, dict[str, float]]]) -> str:
    """Markdown table: mean +- standard deviation over seeds for each method."""
    keys = ("accuracy", "template_accuracy", "gap_score", "gap_rate")
    lines = ["| method | seeds | movie val. accuracy | template accuracy | gap: mean positive score | "
             "gap: positive rate | seeds with a score gap beyond 2 SE |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in METHODS:
        rows = [seed[name] for seed in per_seed if name in seed]
        if not rows:
            continue
        cells = []
        for key in keys:
            values = np.asarray([row[key] for row in rows])
            cells.append(
                f"{values.mean():.2f} +- {values.std(ddof=1) if len(values) > 1 else 0:.2f}"
            )
        beyond = sum(abs(row["gap_score"]) > 2 * row["gap_score_se"] for row in rows)
        cells.append(f"{beyond}/{len(rows)}")
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=TOOL, description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=pathlib.Path)
    p.add_argument("--data", choices=("biased", "clean"), default="biased")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--steps", type=int, default=300, help="plain and FairIJ prompt steps")
    p.add_argument("--prompt_length", type=int, default=20)
    p.add_argument("--trigger_length", type=int, default=5)
    p.add_argument("--trigger_steps", type=int, default=150)
    p.add_argument("--adversary_weight", type=float, default=1.0)
    p.add_argument("--remove_fraction", type=float, default=0.1)
    p.add_argument("--hessian_examples", type=int, default=64)
    p.add_argument("--damping", type=float, default=0.01)
    p.add_argument(
        "--gap_pairs", type=int, default=300, help="template pairs in the gap's gradient"
    )
    p.add_argument("--loo_check", type=int, default=0, help="examples in the leave-one-out check")
    p.add_argument("--names", type=pathlib.Path, default=None,
                   help="JSON {group: [names]} for the templates (default: the bundled lists)")  # fmt: skip
    p.add_argument("--checkpoint", default=None, help="T5X checkpoint (default: the shipped model)")
    p.add_argument("--train_examples", type=int, default=None, help="first N train examples (all)")
    args = p.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown or "plain" not in args.methods:
        raise ToolExit(TOOL, f"--methods takes 'plain' and any of {list(METHODS[1:])}; got {args.methods}.")  # fmt: skip
    return args


def _names(path: pathlib.Path | None) -> dict[str, list[str]]:
    if path is None:
        return fd.group_names()
    try:
        names = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"--names {path} is not a readable JSON file: {e}") from e
    if not isinstance(names, dict) or not all(isinstance(v, list) for v in names.values()):
        raise InputError(f"--names {path} must hold {{group: [names]}}.")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError as e:
        raise ToolExit(TOOL, f"--seeds {args.seeds!r} must be comma-separated integers.") from e
    try:
        setup = load_setup(args.data, args.checkpoint, _names(args.names), args.train_examples)
    except (RunError, FileNotFoundError, checkpoints.CheckpointError) as e:
        raise ToolExit(TOOL, e) from e
    per_seed = [run_seed(setup, args, seed) for seed in seeds]
    report = table(per_seed)
    print(report)
    (args.out / "table.md").write_text(report + "\n")
    if args.loo_check:
        check_path = args.out / "loo_check.json"
        if not check_path.exists():
            plain = jnp.asarray(np.load(args.out / f"seed_{seeds[0]}" / "plain.npy"))
            check = loo_check(setup, plain, args.loo_check, args.damping, args.gap_pairs)
            check_path.write_text(json.dumps(check, indent=2) + "\n")
        check = json.loads(check_path.read_text())
        print(f"influence vs leave-one-out refits, {check['examples']} examples: Spearman "
              f"{check['spearman']:.3f} ({check_path})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
