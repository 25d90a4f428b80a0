"""Text-to-text formats of the paper's tasks (as T5 defines them) and their variants.

Formats map TFDS-shaped examples (see `readers`) to `inputs` / `targets` strings:

  rte sentence1: <s1> sentence2: <s2>                        -> entailment
  boolq passage: <p> question: <q>                           -> True
  multirc question: <q> answer: <a> paragraph: <p>           -> False
  record query: <q> entities: <e1>, <e2> passage: <p>        -> <entity> (one example per answer)
  wsc text: ... * <noun> * ... # <pronoun> # ...             -> True
  wsc: ... *<pronoun>* ...                                   -> <referent>   (WSC simple)
  stsb sentence1: <s1> sentence2: <s2>                       -> 3.8
  question: <q> context: <c>   (punctuation padded)          -> <answer>     (MRQA)

Variants for the checkpoint's pretraining objective and task-name token:
`remove_task_prefix` drops the first word of `inputs` (the "taskless" format),
`prepend_sentinel` puts `<extra_id_0>` before the target tokens (what a
span-corruption checkpoint expects to emit first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import seqio
import tensorflow as tf

from prompt_tuning.data.vocab import sentinel_id

UNKNOWN_LABEL = "<unk>"  # target of unlabelled (test) examples, as in T5


def _fields_text(prefix: str, example: Mapping[str, tf.Tensor], keys: Sequence[str]) -> tf.Tensor:
    """`"<prefix> key1: <value1> key2: <value2> ..."`."""
    parts: list[str | tf.Tensor] = [prefix]
    for key in keys:
        parts += [f"{key}:", example[key]]
    return tf.strings.join(parts, separator=" ")


def _label_text(label: tf.Tensor, label_names: Sequence[str]) -> tf.Tensor:
    """Class index -> its name; -1 (no label) -> `<unk>`."""
    return tf.cond(
        tf.equal(label, -1),
        lambda: tf.constant(UNKNOWN_LABEL),
        lambda: tf.gather(tf.constant(list(label_names)), label),
    )


@seqio.map_over_dataset
def classification(
    example: Mapping[str, tf.Tensor],
    prefix: str,
    keys: Sequence[str],
    label_names: Sequence[str],
) -> dict[str, tf.Tensor]:
    """T5's GLUE/SuperGLUE format: `"<prefix> k1: v1 k2: v2"` -> label name.

    Args:
      prefix: the task-name word (`rte`, `boolq`, ...).
      keys: the text features in the order T5 writes them.
      label_names: class names indexed by the example's `label`.

    Returns:
      `inputs`, `targets`, and `idx` when the example has one.
    """
    formatted = {
        "inputs": _fields_text(prefix, example, keys),
        "targets": _label_text(example["label"], label_names),
    }
    if "idx" in example:
        formatted["idx"] = example["idx"]
    return formatted


@seqio.map_over_dataset
def multirc(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """MultiRC: one example per answer option, HTML line breaks and bold removed.

    Keeps `idx/paragraph`, `idx/question`, `idx/answer`: the metric groups answer
    options by question.
    """
    text = _fields_text("multirc", example, ("question", "answer", "paragraph"))
    text = tf.strings.regex_replace(text, "<br>", " ")
    text = tf.strings.regex_replace(text, "</?b>", "")
    return {
        "inputs": text,
        "targets": _label_text(example["label"], ("False", "True")),
        "idx/paragraph": example["idx"]["paragraph"],
        "idx/question": example["idx"]["question"],
        "idx/answer": example["idx"]["answer"],
    }


@seqio.map_over_dataset
def stsb(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """STS-B: the score rounded to the nearest 0.2, written with one decimal (`3.8`)."""
    score = tf.round(example["label"] * 5) / 5
    return {
        "inputs": _fields_text("stsb", example, ("sentence1", "sentence2")),
        "targets": tf.strings.as_string(score, precision=1),
        "idx": example["idx"],
    }


def _regex_escape(text: tf.Tensor) -> tf.Tensor:
    return tf.strings.regex_replace(text, r"([.^$|?*+()\[\]{}\\])", r"\\\1")


def _mark_word_span(text: tf.Tensor, span: tf.Tensor, index: tf.Tensor, mark: str) -> tf.Tensor:
    """Surrounds `span`, starting at word `index` of `text`, with `mark`s."""
    pattern = tf.strings.join(
        [r"^((?:\S+\s){", tf.strings.as_string(index), r"})(", _regex_escape(span), ")"]
    )
    return tf.strings.regex_replace(text, pattern, rf"\1{mark} \2 {mark}")


@seqio.map_over_dataset
def wsc(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """WSC as classification: the noun in `* *`, the pronoun in `# #` -> True/False."""
    text = _mark_word_span(example["text"], example["span1_text"], example["span1_index"], "*")
    # Marking the noun added two words ("*" twice) before any later pronoun.
    shift = 2 * tf.cast(example["span1_index"] < example["span2_index"], tf.int32)
    text = _mark_word_span(text, example["span2_text"], example["span2_index"] + shift, "#")
    return {
        "inputs": tf.strings.join(["wsc text:", text], separator=" "),
        "targets": _label_text(example["label"], ("False", "True")),
        "idx": example["idx"],
    }


# Two WSC texts where the pronoun index points elsewhere; T5 blanks them by hand.
_WSC_BLANKED_BY_HAND = {
    "The boy continued to whip the pony , and eventually the pony threw him over. John laughed "
    'out quite loud. "Good for him," he said. ': "The boy continued to whip the pony , and "
    'eventually the pony threw him over. John laughed out quite loud. "Good for X ," he said.',
    "When they had eventually calmed down a bit , and had gotten home, Mr. Farley put the magic "
    "pebble in an iron safe . Some day they might want to use it , but really for now, what more "
    "could they wish for?": "When they had eventually calmed down a bit , and had gotten home, "
    "Mr. Farley put the magic pebble in an iron safe . Some day they might want to use X , but "
    "really for now, what more could they wish for?",
}


def _blank_pronoun(example: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """The text with the pronoun (word `span2_index`) replaced by `X`."""
    words = tf.strings.split(example["text"], sep=" ")
    index = example["span2_index"]
    blanked = tf.strings.join(
        [
            tf.strings.reduce_join(words[:index], separator=" "),
            "X",
            tf.strings.reduce_join(words[index + 1 :], separator=" "),
        ],
        separator=" ",
    )
    for text, fixed in _WSC_BLANKED_BY_HAND.items():
        blanked = tf.where(tf.equal(example["text"], text), fixed, blanked)
    return blanked


def wsc_simple(dataset: tf.data.Dataset, correct_referent_only: bool) -> tf.data.Dataset:
    """WSC as generation: `"wsc: ... *<pronoun>* ..."` -> the candidate noun.

    The target is always the candidate (span1), right or wrong; training keeps
    only the examples whose candidate is the referent (`correct_referent_only`).
    `label` stays in the example: evaluation asks whether the model named the
    candidate, which is right exactly when the label is True.
    """
    if correct_referent_only:
        dataset = dataset.filter(lambda ex: tf.equal(ex["label"], 1))

    def fn(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        pronoun = tf.strings.join([" *", example["span2_text"], "* "])
        text = tf.strings.regex_replace(_blank_pronoun(example), " X ", pronoun)
        return {
            "inputs": tf.strings.join(["wsc:", text], separator=" "),
            "targets": example["span1_text"],
            "label": example["label"],
            "idx": example["idx"],
        }

    return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE)


def record(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """ReCoRD: one example per correct answer (one `<unk>` example when there is none).

    `@highlight` markers become sentence breaks. Every example keeps all
    `answers` and `idx/passage`, `idx/query`, which the metric uses to score each
    query once against its best answer.
    """

    def per_answer(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        passage = tf.strings.regex_replace(
            example["passage"], r"(\.|\?|\!|\"|\')\n@highlight\n", r"\1 "
        )
        passage = tf.strings.regex_replace(passage, r"\n@highlight\n", ". ")
        inputs = tf.strings.join(
            [
                "record query:",
                example["query"],
                "entities:",
                tf.strings.reduce_join(example["entities"], separator=", "),
                "passage:",
                passage,
            ],
            separator=" ",
        )
        answers = example["answers"]
        targets = tf.cond(
            tf.size(answers) > 0, lambda: answers, lambda: tf.constant([UNKNOWN_LABEL])
        )
        count = tf.size(targets)
        return {
            "inputs": tf.fill([count], inputs),
            "targets": targets,
            "answers": tf.tile(answers[tf.newaxis], [count, 1]),
            "idx/passage": tf.fill([count], example["idx"]["passage"]),
            "idx/query": tf.fill([count], example["idx"]["query"]),
        }

    return dataset.map(per_answer, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def pad_punctuation(text: tf.Tensor) -> tf.Tensor:
    """Spaces around every non-word character, runs of whitespace collapsed (T5's QA text)."""
    text = tf.strings.regex_replace(text, r"(\W)", r" \1 ")
    return tf.strings.regex_replace(text, r"\s+", " ")


@seqio.map_over_dataset
def mrqa(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """T5's SQuAD format: `"question: <q> context: <c>"` -> the first answer.

    Question, context and answers have their punctuation padded; `answers` keeps
    every acceptable answer for the metric.
    """
    answers = pad_punctuation(example["answers"])
    inputs = tf.strings.join(
        [
            "question:",
            pad_punctuation(example["question"]),
            "context:",
            pad_punctuation(example["context"]),
        ],
        separator=" ",
    )
    return {
        "inputs": tf.strings.regex_replace(inputs, r"\s+", " "),
        "targets": answers[0],
        "answers": answers,
        "qid": example["qid"],
    }


@seqio.map_over_dataset
def remove_task_prefix(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The taskless format: `inputs` without its first word (`rte`, `wsc:`, ...)."""
    return {**example, "inputs": tf.strings.regex_replace(example["inputs"], r"^[^ ]* ", "")}


def prepend_sentinel(
    dataset: tf.data.Dataset, output_features: Mapping[str, seqio.Feature]
) -> tf.data.Dataset:
    """Puts the `<extra_id_0>` token before the (tokenised) targets.

    A token preprocessor: run it after `seqio.preprocessors.tokenize`.
    """
    sentinel = sentinel_id(output_features["targets"].vocabulary)

    def fn(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        targets = example["targets"]
        prefix = tf.constant([sentinel], dtype=targets.dtype)
        return {**example, "targets": tf.concat([prefix, targets], axis=0)}

    return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE)
