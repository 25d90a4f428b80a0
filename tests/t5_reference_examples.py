"""Raw examples, shaped as TFDS yields them, for the differential test against the t5 library.

Written by hand for edge cases T5's formats must keep byte for byte: quotes of
several kinds, non-ASCII letters and symbols (a registered-trademark sign, a
micro sign, CJK, an emoji), punctuation and underscores inside answers, several
answers, unlabelled test rows (label -1), empty fields, tabs, newlines and runs
of spaces. `tests/t5_reference.py` (with the t5 library) and
`tests/test_tasks_t5_reference.py` (with this project) both read them.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from prompt_tuning.data import readers

Example = dict[str, Any]

_SENTENCES = (
    'She said "no" — then \u201cyes\u201d, didn\'t she?',
    "Caf\u00e9 Zo\u00eb sells 5\u00b5g of Acme\u00ae dust_free powder\u2122 for $5,000.",
    "",
    "tabs\tand  double  spaces\nand a newline \u4e2d\u6587 \U0001f600",
)


def _pairs(first: str, second: str, labels: tuple[int, ...]) -> list[Example]:
    """Sentence pairs over `_SENTENCES`, one per label (-1: an unlabelled test row)."""
    return [
        {
            first: _SENTENCES[n % len(_SENTENCES)],
            second: _SENTENCES[(n + 1) % len(_SENTENCES)],
            "label": label,
            "idx": n,
        }
        for n, label in enumerate(labels)
    ]


def _singles(labels: tuple[int, ...]) -> list[Example]:
    return [
        {"sentence": _SENTENCES[n % len(_SENTENCES)], "label": label, "idx": n}
        for n, label in enumerate(labels)
    ]


_WNLI_SIMPLE = [
    # (sentence1, sentence2): T5's heuristic finds the pronoun and its candidate.
    (
        "The trophy doesn't fit into the brown suitcase because it is too large.",
        "The trophy is too large.",
    ),
    (
        "Zo\u00eb thanked Mrs. M\u00fcller because she had helped her.",
        "Mrs. M\u00fcller had helped Zo\u00eb.",
    ),
    ('Sam told "Alex" that he would win the race.', '"Alex" would win the race.'),
    ("The dog chased the cat's toy until it was exhausted.", "The dog was exhausted."),
    ("Ann gave the book to her sister because she had finished it.", "Ann had finished it."),
    (
        "Pete envies Martin although he is very successful.",
        "Martin is very successful.",
    ),
]

_WSC = [
    # (text, span1 index, span1, span2 index, span2, label)
    ("Joan thanked Susan for all the help she had given.", 2, "Susan", 7, "she", 1),
    (
        "Zo\u00eb told \u201cMr. Ali\u201d that he was wrong about the caf\u00e9.",
        2,
        "\u201cMr. Ali\u201d",
        5,
        "he",
        0,
    ),
    (
        "The city councilmen refused the demonstrators a permit because they feared violence.",
        0,
        "The city councilmen",
        9,
        "they",
        -1,
    ),
    (
        "Bob paid for Charlie's college education , so he is very grateful.",
        3,
        "Charlie",
        8,
        "he",
        1,
    ),
]

_SQUAD_CONTEXT = (
    "The Acme\u00ae V\u00e9lo (model \u201cAX-1\u201d) weighs 7.5 kg; its 5\u00b5m coating "
    "was patented in the U.S. on 1 May 1999 by O'Neil & Sons_Ltd."
)
_SQUAD = [
    ("What was patented?", ["its 5\u00b5m coating", "coating", "5\u00b5m coating"]),
    ("Who patented it?", ["O'Neil & Sons_Ltd."]),
    ("What is the model called?", ["\u201cAX-1\u201d", "AX-1"]),
    ("Where?", ["the U.S."]),
    # Not in the context: the span format has no target for it.
    ("How fast is it?", ["very fast"]),
    ("", ["Acme\u00ae"]),
]


def _squad() -> list[Example]:
    return [
        {
            "id": f"q{n}",
            "title": "Acme",
            "context": _SQUAD_CONTEXT,
            "question": question,
            "answers": {
                "text": answers,
                "answer_start": [max(_SQUAD_CONTEXT.find(a), 0) for a in answers],
            },
        }
        for n, (question, answers) in enumerate(_SQUAD)
    ]


def _mrqa() -> list[Example]:
    return [
        {
            "subset": "SQuAD",
            "qid": ex["id"],
            "question": ex["question"],
            "context": ex["context"],
            "answers": ex["answers"]["text"],
        }
        for ex in _squad()
    ]


_RECORD_PASSAGE = (
    "Zo\u00eb's caf\u00e9 \u201cLe Ch\u00e2t\u201d opened in Paris.\n@highlight\nIt sells "
    "Acme\u00ae coffee\n@highlight\nBob's review: 5/5!"
)

_MULTIRC_PARAGRAPH = "<b>Sent 1: </b>Zo\u00eb owns a caf\u00e9.<br><b>Sent 2: </b>It sells \u201cAcme\u00ae\u201d tea.<br>"


def _record() -> list[Example]:
    rows = [
        ("Where did @placeholder open?", ["Paris"]),
        ("@placeholder sells coffee.", ["Le Ch\u00e2t", "Zo\u00eb"]),
        ("Who reviewed @placeholder?", []),
    ]
    return [
        {
            "passage": _RECORD_PASSAGE,
            "query": query,
            "entities": ["Acme\u00ae", "Bob", "Le Ch\u00e2t", "Paris", "Zo\u00eb"],
            "answers": answers,
            "idx": {"passage": 0, "query": n},
        }
        for n, (query, answers) in enumerate(rows)
    ]


def _multirc() -> list[Example]:
    rows = [
        ("What does it sell?", "\u201cAcme\u00ae\u201d tea", 1),
        ("Who?", "", 0),
        ("Where?", "Paris", -1),
    ]
    return [
        {
            "paragraph": _MULTIRC_PARAGRAPH,
            "question": question,
            "answer": answer,
            "label": label,
            "idx": {"paragraph": 0, "question": n, "answer": n},
        }
        for n, (question, answer, label) in enumerate(rows)
    ]


def _copa() -> list[Example]:
    return [
        {
            "premise": _SENTENCES[n],
            "choice1": _SENTENCES[(n + 1) % 4],
            "choice2": _SENTENCES[(n + 2) % 4],
            "question": question,
            "label": label,
            "idx": n,
        }
        for n, (question, label) in enumerate((("cause", 0), ("effect", 1), ("effect", -1)))
    ]


def _wic() -> list[Example]:
    return [
        {
            "word": word,
            "sentence1": _SENTENCES[n],
            "sentence2": _SENTENCES[n + 1],
            "start1": 0,
            "start2": 1,
            "end1": 3,
            "end2": 4,
            "label": label,
            "idx": n,
        }
        for n, (word, label) in enumerate((("caf\u00e9", 1), ("", 0), ("say", -1)))
    ]


def _wsc() -> list[Example]:
    return [
        {
            "text": text,
            "span1_index": i1,
            "span1_text": s1,
            "span2_index": i2,
            "span2_text": s2,
            "label": label,
            "idx": n,
        }
        for n, (text, i1, s1, i2, s2, label) in enumerate(_WSC)
    ]


def _wnli() -> list[Example]:
    return [
        {"sentence1": premise, "sentence2": hypothesis, "label": (1, 0, -1)[n % 3], "idx": n}
        for n, (premise, hypothesis) in enumerate(_WNLI_SIMPLE)
    ]


def _stsb() -> list[Example]:
    pairs = _pairs("sentence1", "sentence2", (0, 0, 0, 0))
    for example, score in zip(pairs, (4.75, 0.333, 0.0, -1.0), strict=True):
        example["label"] = score
    return pairs


_NLI = (0, 1, 2, -1)
_BINARY = (0, 1, -1)
# TFDS dataset (name/config without version) -> raw examples.
EXAMPLES: dict[str, list[Example]] = {
    "glue/cola": _singles(_BINARY),
    "glue/sst2": _singles(_BINARY),
    "glue/mrpc": _pairs("sentence1", "sentence2", _BINARY),
    "glue/qqp": _pairs("question1", "question2", _BINARY),
    "glue/stsb": _stsb(),
    "glue/mnli": _pairs("premise", "hypothesis", _NLI),
    "glue/mnli_matched": _pairs("premise", "hypothesis", _NLI),
    "glue/mnli_mismatched": _pairs("premise", "hypothesis", _NLI),
    "glue/qnli": _pairs("question", "sentence", _BINARY),
    "glue/rte": _pairs("sentence1", "sentence2", _BINARY),
    "glue/wnli": _wnli(),
    "glue/ax": _pairs("premise", "hypothesis", (-1, -1)),
    "super_glue/boolq": _pairs("question", "passage", _BINARY),
    "super_glue/cb": _pairs("premise", "hypothesis", _NLI),
    "super_glue/copa": _copa(),
    "super_glue/multirc": _multirc(),
    "super_glue/record": _record(),
    "super_glue/rte": _pairs("premise", "hypothesis", _BINARY),
    "super_glue/wic": _wic(),
    "super_glue/wsc.fixed": _wsc(),
    "super_glue/axb": _pairs("sentence1", "sentence2", _BINARY),
    "super_glue/axg": _pairs("premise", "hypothesis", _BINARY),
    "squad/v1.1": _squad(),
    "mrqa/squad": _mrqa(),
}


def signature(dataset: str) -> dict[str, Any]:
    """The `tf.TensorSpec`s of one raw example of `dataset` (TFDS's features)."""
    family, config = dataset.split("/")
    if family == "glue":
        return dict(
            readers.glue(config.removesuffix("_matched").removesuffix("_mismatched")).signature
        )
    if family == "super_glue":
        return dict(readers.super_glue(config).signature)
    if family == "squad":
        return dict(readers.SQUAD_SIGNATURE)
    return dict(readers.MRQA_SIGNATURE)


def dataset(name: str) -> tf.data.Dataset:
    """The raw examples of TFDS dataset `name` (no version) as a `tf.data.Dataset`."""
    rows = EXAMPLES[name]
    return tf.data.Dataset.from_generator(lambda: iter(rows), output_signature=signature(name))


def tfds_name(versioned: str) -> str:
    """`glue/rte:2.0.0` -> `glue/rte`: the key of `EXAMPLES`."""
    return versioned.split(":")[0]
