"""The "Reading" paragraph under each table of docs/results.md.

Every number in them is computed from the section's data, and every comparison
(better / worse, within the seed noise or not) is decided from those numbers,
so a rerun that moves a result rewrites the sentence; what the paper found is
stated beside it for comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Cells = Mapping[tuple[str, str], Sequence[float]]


def _noise_words(gap: float, noise: float) -> str:
    """How a gap compares with the seed noise (twice the largest per-setting std)."""
    return "beyond" if abs(gap) > 2 * noise else "within"


def length_init(cells: Cells, stems: Mapping[str, str]) -> str:
    """Section 1: `cells[(length, init)]` = best accuracy per seed."""
    inits = list(dict.fromkeys(init for _, init in cells))
    # Lengths with every initialisation finished (a partial sweep leaves some out).
    lengths = sorted({n for n, _ in cells if all((n, i) in cells for i in inits)}, key=float)
    means = {key: float(np.mean(v)) for key, v in cells.items()}
    noise = max(float(np.std(cells[n, i])) for n in lengths for i in inits)
    gaps = {n: max(means[n, i] for i in inits) - min(means[n, i] for i in inits) for n in lengths}
    widest = max(gaps, key=gaps.get)
    by_length = {n: float(np.mean([means[n, i] for i in inits])) for n in lengths}
    best = max(((n, i) for n in lengths for i in inits), key=means.get)
    verdict = (
        "no initialisation is reliably better than another at this budget"
        if gaps[widest] <= 2 * noise
        else f"the initialisation matters at length {widest}"
    )
    return (
        f"**Reading.** The best cell is length {best[0]}, {stems[best[1]]} ({means[best]:.1f}). "
        "Averaged over the three initialisations, accuracy by length is "
        + ", ".join(f"{by_length[n]:.1f} ({n})" for n in lengths)
        + f". The initialisations differ by at most {gaps[widest]:.1f} points (at length "
        f"{widest}), against seed standard deviations up to {noise:.1f}: {verdict}. "
        "Lester et al. found class-label initialisation best and random uniform worst for every "
        "model below XXL, with the widest gaps at short prompts, and little gain past 20 tokens. "
        "Here the label words were already targets of the model's supervised pretraining tasks, "
        "so, we think, the decoder's read-out does not depend on where the prompt starts; at 300 "
        "steps and learning rate 0.3 the vectors also move far from their starting points "
        "(section 6).\n"
    )


def objective(by_stage: Mapping[str, Sequence[float]]) -> str:
    """Section 2: accuracy per seed for each pretraining stage, in training order."""
    names = list(by_stage)
    means = [float(np.mean(by_stage[n])) for n in names]
    noise = max(float(np.std(v)) for v in by_stage.values())
    steps = [
        f"{means[i + 1] - means[i]:+.1f} points from “{names[i]}” to “{names[i + 1]}” "
        f"({_noise_words(means[i + 1] - means[i], noise)} the seed noise)"
        for i in range(len(names) - 1)
    ]
    return (
        "**Reading.** " + "; ".join(steps) + ". "
        "In the paper, a T5 pretrained by span corruption alone was hard to prompt-tune, and LM "
        "adaptation (or sentinel-formatted targets) fixed it, because a frozen span-corruption "
        "decoder expects sentinels, not natural text. This model's recipe has no "
        "span-corruption-only stage to compare (its supervised tasks are mixed in from step 1), "
        "so the question here is how much pretraining the prompt needs beyond the MiniLM "
        "embeddings.\n"
    )


def design_vs_tuning(rows: Mapping[str, tuple[int, Sequence[float]]]) -> str:
    """Section 3: `rows[name] = (trainable parameters, accuracy per seed)`."""
    prompt_n, prompt = rows["prompt tuning"]
    model_n, model = rows["model tuning"]
    _, design = rows["prompt design"]
    gap = float(np.mean(model) - np.mean(prompt))
    return (
        f"**Reading.** Model tuning leads prompt tuning by {gap:.1f} points while training "
        f"{model_n / prompt_n:,.0f} times as many parameters; prompt tuning leads the best "
        f"hand-written prompt by {float(np.mean(prompt) - np.mean(design)):.1f}. Lester et al.'s "
        "Figure 1 shows the same order at the small end (T5-Small, 77M parameters: model tuning "
        "far ahead, prompt design far behind) and the gap closing only past a billion "
        "parameters; this model is ten times smaller than T5-Small.\n"
    )


def transfer(
    prompt: Mapping[str, float],
    model: Mapping[str, float],
    frozen: Mapping[str, float],
    noise: float,
) -> str:
    """Section 4: mean accuracy per domain for the soft prompt, model tuning and no prompt.

    `noise` is the largest seed standard deviation on tweets.
    """
    tweets, movie = "tweet_sentiment", "movie_sentiment"
    lead = prompt[tweets] - model[tweets]
    comparison = (
        f"prompt tuning {'leads' if lead > 0 else 'trails'} model tuning by {abs(lead):.1f} points, "
        f"{_noise_words(lead, noise)} the seed noise (standard deviations up to {noise:.1f})"
    )
    below = [
        name
        for name, row in (("prompt tuning", prompt), ("model tuning", model))
        if row[tweets] < frozen[tweets]
    ]
    return (
        "**Reading.** On tweets, which neither the model's pretraining nor the training task "
        f"contained, {comparison}, while model tuning is {model[movie] - prompt[movie]:.1f} "
        "points ahead in domain. "
        + (
            f"{' and '.join(below).capitalize()} end{'s' if len(below) == 1 else ''} below the "
            f"frozen model with no prompt on tweets ({frozen[tweets]:.1f}): training on movie "
            "reviews costs part of what the frozen model got right on tweets. "
            if below
            else ""
        )
        + "Lester et al. found prompt tuning ahead of model tuning on most out-of-domain "
        "shifts (MRQA, and paraphrase detection across QQP and MRPC), and read it as the frozen "
        "model keeping what it knew while fine-tuning every weight overfits the training domain; "
        "at this scale and budget the comparison "
        + ("shows that pattern" if lead > 2 * noise else "does not separate the two")
        + ".\n"
    )


def ensemble(singles: Sequence[float], vote: float) -> str:
    """Section 5: each prompt's accuracy and the majority vote's."""
    mean, best = float(np.mean(singles)), max(singles)
    return (
        f"**Reading.** The vote scores {vote:.1f}: {vote - mean:+.1f} points against the "
        f"average prompt and {vote - best:+.1f} against the best one. Lester et al.'s Table 3 "
        "(T5-XXL, SuperGLUE) has the ensemble above the average on every task and above the "
        "best prompt on most.\n"
    )


def interpret(persisting: Sequence[Sequence[int]], label_rows: int, cosine: float) -> str:
    """Section 6: per seed, the label-initialised rows still near their label; their mean cosine to it."""
    kept = [len(rows) for rows in persisting]
    return (
        f"**Reading.** Of the {label_rows} label-initialised rows per prompt, "
        + ", ".join(str(k) for k in kept)
        + " (one count per seed) still have their own label among their five nearest tokens "
        f"after training, although their cosine similarity to it fell from 1 to {cosine:.2f} on "
        "average: the vector moved far, yet its label is still among its neighbours. Lester et al. found class labels persisting as nearest neighbours "
        "of the prompt vectors initialised with them, and other vectors drifting to "
        "semantically related words.\n"
    )


def methods(per_seed: Mapping[str, Sequence[float]], params: Mapping[str, int]) -> str:
    """Section 7: accuracy per seed and trainable parameters of each method."""
    ranked = sorted(per_seed, key=lambda m: -float(np.mean(per_seed[m])))
    noise = max(float(np.std(v)) for v in per_seed.values())
    top, last = ranked[0], ranked[-1]
    gap = float(np.mean(per_seed[top]) - np.mean(per_seed[last]))
    return (
        "**Reading.** By mean accuracy: "
        + " > ".join(
            f"{m} ({float(np.mean(per_seed[m])):.1f}, {params[m]:,} params)" for m in ranked
        )
        + f". First and last are {gap:.1f} points apart, {_noise_words(gap, noise)} the seed "
        "noise (twice the largest standard deviation). The paper has no such table; these are "
        "the project's own comparisons at one budget and learning rate, not each method's best "
        "setting.\n"
    )
