"""Text-to-text formats of the paper's tasks (as T5 defines them) and their variants.

Formats map TFDS-shaped examples (see `readers`) to `inputs` / `targets` strings:

  rte sentence1: <s1> sentence2: <s2>                        -> entailment
  boolq passage: <p> question: <q>                           -> True
  multirc question: <q> answer: <a> paragraph: <p>           -> False
  record query: <q> entities: <e1>, <e2> passage: <p>        -> <entity> (one example per answer)
  wsc text: ... * <noun> * ... # <pronoun> # ...             -> True
  wsc: ... *<pronoun>* ...                                   -> <referent>   (WSC simple)
  wsc: ... *<pronoun>* ...  (from a WNLI pair)              -> <candidate>  (WNLI simple)
  stsb sentence1: <s1> sentence2: <s2>                       -> 3.8
  question: <q> context: <c>   (punctuation padded)          -> <answer>     (SQuAD, MRQA)
  squad trivia question: <q>                                 -> <answer>     (SQuAD context-free)
  question: <q> context: <c>                                 -> start: <i> end: <j>  (SQuAD span)

Variants for the checkpoint's pretraining objective and task-name token:
`remove_task_prefix` drops the first word of `inputs` (the "taskless" format),
`prepend_sentinel` puts `<extra_id_0>` before the target tokens (what a
span-corruption checkpoint expects to emit first); `t5_sentinels` is T5's own
`_1_sentinel` form, with `<extra_id_0>` ending the inputs as well.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import seqio
import tensorflow as tf

from prompt_tuning.data import wnli_simple as wnli_simple_format
from prompt_tuning.data.vocab import sentinel_id
from prompt_tuning.errors import InputError

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
    only the examples whose candidate is the referent (`correct_referent_only`: a
    label other than 0).
    `label` stays in the example: evaluation asks whether the model named the
    candidate, which is right exactly when the label is True.
    """
    if correct_referent_only:
        # As T5: the label cast to bool, so unlabelled (-1) examples stay too.
        dataset = dataset.filter(lambda ex: tf.not_equal(ex["label"], 0))

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


def _wnli_texts(premise: tf.Tensor, hypothesis: tf.Tensor) -> tuple[str, str]:
    return wnli_simple_format.format_pair(premise.numpy().decode(), hypothesis.numpy().decode())


@seqio.map_over_dataset
def wnli_simple(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """WNLI as T5's WSC-style generation: `"wsc: ... *<pronoun>* ..."` -> the candidate.

    See `prompt_tuning.data.wnli_simple`; `label` stays for the metric, as in `wsc_simple`.
    """
    inputs, targets = tf.py_function(
        _wnli_texts, [example["sentence1"], example["sentence2"]], [tf.string, tf.string]
    )
    return {
        "inputs": tf.reshape(inputs, []),
        "targets": tf.reshape(targets, []),
        "label": example["label"],
        "idx": example["idx"],
    }


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
    """Spaces around every ASCII punctuation mark, runs of whitespace collapsed (T5's QA text).

    `[[:punct:]]` is ASCII-only in RE2, as in T5: letters and symbols beyond
    ASCII (`é`, `®`, `µ`, curly quotes) stay attached to their words.
    """
    text = tf.strings.regex_replace(text, r"([[:punct:]])", r" \1 ")
    return tf.strings.regex_replace(text, r"\s+", " ")


def _string_join(parts: Sequence[str | tf.Tensor]) -> tf.Tensor:
    """Parts joined by spaces, runs of whitespace collapsed (T5's QA inputs)."""
    return tf.strings.regex_replace(tf.strings.join(parts, separator=" "), r"\s+", " ")


class RecordFormatError(InputError):
    """A record whose fields are not those the task's format reads."""


# Format -> field -> the keys of a nested field (() for a plain one), and the tasks
# that read records of that shape.
QA_RECORDS = {
    "SQuAD": ({"id": (), "question": (), "context": (), "answers": ("text",)}, "squad_v010_*"),
    "MRQA": ({"qid": (), "question": (), "context": (), "answers": ()}, "mrqa_*_v100"),
}


def _field_names(example: Mapping[str, object]) -> str:
    return ", ".join(
        f"{key} {{{', '.join(sorted(value))}}}" if isinstance(value, Mapping) else key
        for key, value in sorted(example.items())
    )


def check_record(example: Mapping[str, object], kind: str) -> None:
    """Raises `RecordFormatError` unless `example` has the fields of a `kind` record.

    `example` is a dataset's `element_spec` (or an example), so a record of the
    wrong dataset (a TFDS `squad` record given to an MRQA task, or the reverse)
    fails before any example is read, naming the fields it should have.
    """
    fields, tasks = QA_RECORDS[kind]
    wrong = [
        name
        for name, nested in fields.items()
        if name not in example
        or isinstance(example[name], Mapping) != bool(nested)
        or any(key not in example[name] for key in nested)
    ]
    if wrong:
        expected = ", ".join(
            f"{name} {{{', '.join(nested)}}}" if nested else name for name, nested in fields.items()
        )
        others = [k for k in QA_RECORDS if k != kind]
        raise RecordFormatError(
            f"The {tasks} tasks read {kind} records with the fields {expected}; this record "
            f"has {_field_names(example)} ({', '.join(wrong)} missing or shaped differently). "
            + " ".join(f"{k} records belong to the {QA_RECORDS[k][1]} tasks." for k in others)
        )


def _qa_example(
    question: tf.Tensor, context: tf.Tensor, answers: tf.Tensor, include_context: bool
) -> dict[str, tf.Tensor]:
    """T5's SQuAD format of one question: padded text, the first answer as target."""
    answers = pad_punctuation(answers)
    question = pad_punctuation(question)
    context = pad_punctuation(context)
    if include_context:
        inputs = _string_join(["question:", question, "context:", context])
    else:
        inputs = _string_join(["squad trivia question:", question])
    return {
        "inputs": inputs,
        "targets": answers[0],
        "answers": answers,
        "context": context,
        "question": question,
    }


def squad(dataset: tf.data.Dataset, include_context: bool = True) -> tf.data.Dataset:
    """T5's SQuAD format: `"question: <q> context: <c>"` -> the first answer.

    With `include_context=False`, `"squad trivia question: <q>"` (T5's
    context-free SQuAD). Question, context and answers have their punctuation
    padded; `answers` keeps every acceptable answer for the metric.
    """
    check_record(dataset.element_spec, "SQuAD")

    def fn(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        formatted = _qa_example(
            example["question"], example["context"], example["answers"]["text"], include_context
        )
        return {**formatted, "id": example["id"]}

    return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE)


def mrqa(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """MRQA in T5's SQuAD format, as the original prompt-tuning code writes it."""
    check_record(dataset.element_spec, "MRQA")

    def fn(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        formatted = _qa_example(example["question"], example["context"], example["answers"], True)
        return {**formatted, "qid": example["qid"]}

    return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE)


def _space_tokens(text: tf.Tensor) -> tf.Tensor:
    """T5's span tokens: non-word characters become spaces, split on every single space.

    Runs of spaces give empty tokens, which count as positions, as in T5.
    """
    return tf.strings.split(tf.strings.regex_replace(text, r"\W", " "), sep=" ")


def _span_target(context: tf.Tensor, answer: tf.Tensor) -> tf.Tensor:
    """`"start: <i> end: <j>"`: the answer's first exact match among the context's tokens, or "".

    Like T5, only starts before `len(context) - len(answer)` are tried, so an
    answer that ends the context is not found.
    """
    needle, haystack = _space_tokens(answer), _space_tokens(context)
    length = tf.size(needle)
    starts = tf.range(tf.size(haystack) - length)
    windows = tf.gather(haystack, starts[:, tf.newaxis] + tf.range(length)[tf.newaxis, :])
    found = tf.where(tf.reduce_all(tf.equal(windows, needle[tf.newaxis, :]), axis=1))[:, 0]

    def span() -> tf.Tensor:
        start = tf.cast(found[0], tf.int32)
        end = start + length - 1
        return tf.strings.join(
            ["start: ", tf.strings.as_string(start), " end: ", tf.strings.as_string(end)]
        )

    return tf.cond(tf.size(found) > 0, span, lambda: tf.constant(""))


def squad_span(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """T5's SQuAD span format: targets `"start: <i> end: <j>"` over space tokens.

    The span is the first answer's position among the padded context's tokens
    (`_space_tokens`); questions whose answer is not found are dropped.
    """

    def fn(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {**example, "targets": _span_target(example["context"], example["targets"])}

    dataset = squad(dataset).map(fn, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.filter(lambda ex: tf.strings.length(ex["targets"]) > 0)


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


def t5_sentinels(
    dataset: tf.data.Dataset, output_features: Mapping[str, seqio.Feature]
) -> tf.data.Dataset:
    """T5's `_1_sentinel` tasks: `<extra_id_0>` after the input tokens and before the targets.

    A token preprocessor (seqio's `add_task_with_sentinels`); follow it with
    `append_eos_keeping_last` so trimming keeps the input's sentinel.
    """
    ids = {key: sentinel_id(output_features[key].vocabulary) for key in ("inputs", "targets")}

    def fn(example: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        inputs, targets = example["inputs"], example["targets"]
        return {
            **example,
            "inputs": tf.concat([inputs, tf.constant([ids["inputs"]], inputs.dtype)], axis=0),
            "targets": tf.concat([tf.constant([ids["targets"]], targets.dtype), targets], axis=0),
        }

    return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE)


def append_eos_keeping_last(
    dataset: tf.data.Dataset,
    output_features: Mapping[str, seqio.Feature],
    sequence_length: Mapping[str, int] | None = None,
) -> tf.data.Dataset:
    """EOS after each feature that takes one; a trimmed feature keeps its last token (the sentinel).

    `[t0 .. tn] -> [t0 .. t(L-3), tn, EOS]` when longer than L = `sequence_length[key]`.
    """

    def finish(key: str, tokens: tf.Tensor) -> tf.Tensor:
        feature = output_features.get(key)
        if feature is None or not feature.add_eos:
            return tokens
        eos = tf.constant([feature.vocabulary.eos_id], tokens.dtype)
        limit = (sequence_length or {}).get(key)
        if limit is None:
            return tf.concat([tokens, eos], axis=0)
        kept = tf.minimum(limit, tf.size(tokens) + 1) - 1
        last = tf.minimum(1, kept)
        return tf.concat([tokens[: kept - last], tokens[tf.size(tokens) - last :], eos], axis=0)

    return dataset.map(
        lambda ex: {key: finish(key, value) for key, value in ex.items()},
        num_parallel_calls=tf.data.AUTOTUNE,
    )
