"""Bundled sentiment tasks: VADER's human-rated snippets (see tasks/data/sentiment/NOTICE).

Format (T5's sst2 style, one shared prefix so a prompt transfers across domains):

  sentiment sentence: <snippet>   ->   negative | positive

  movie_sentiment              train / validation / test: movie-review snippets
  product_sentiment            validation / test: Amazon product-review snippets
  tweet_sentiment              validation / test: tweets
  movie_to_product_sentiment   mixture: train on movie reviews, evaluate on movie and product
  movie_to_tweet_sentiment     mixture: train on movie reviews, evaluate on movie and tweets
  movie_sentiment_transfer     mixture: train on movie reviews, evaluate on all three
  movie_and_polarity_word      mixture: movie reviews and word polarity (multi-task prompts)

The product and tweet sets have no train split: they measure zero-shot domain
transfer. Each name is registered in the four variants of
`prompt_tuning.data.registry` (`_taskless`, `_sentinel`, `_taskless_sentinel`);
`class_labels(name)` gives `("negative", "positive")`. The files are rebuilt
by `scripts/build_sentiment.py`; counts are in their `manifest.json`.
"""

from __future__ import annotations

import seqio

from prompt_tuning.data import metrics
from prompt_tuning.data.bundled import (
    bundled_dir,
    read_manifest,
    register_tsv_classification,
    tsv_source,
)
from prompt_tuning.data.registry import register_mixture

LABELS = ("negative", "positive")
PREFIX = "sentiment"
DOMAINS = ("movie", "product", "tweet")
TRAIN_DOMAIN = "movie"

DATA_DIR = bundled_dir("sentiment")
MANIFEST = read_manifest(DATA_DIR)


def source(domain: str) -> seqio.TextLineDataSource:
    """The TSV splits of `domain` ('movie', 'product' or 'tweet')."""
    splits = MANIFEST["domains"][domain]["splits"]
    return tsv_source(
        {split: DATA_DIR / entry["file"] for split, entry in splits.items()},
        {split: entry["examples"] for split, entry in splits.items()},
    )


def task(domain: str) -> str:
    """The registered (plain) task name of `domain`."""
    return f"{domain}_sentiment"


for _domain in DOMAINS:
    register_tsv_classification(
        task(_domain),
        source(_domain),
        prefix=PREFIX,
        field="sentence",
        columns=MANIFEST["columns"],
        label_names=LABELS,
        # Product reviews and tweets lean positive (about 60% and 69%), so
        # macro-F1 shows what accuracy can hide.
        metric_fns=(metrics.accuracy, metrics.macro_f1(len(LABELS))),
    )


for _target in ("product", "tweet"):
    register_mixture(f"movie_to_{_target}_sentiment", [task(TRAIN_DOMAIN), task(_target)])
register_mixture("movie_sentiment_transfer", [task(d) for d in DOMAINS])

# Multi-task prompts' auxiliary task in docs/results.md: VADER's word ratings under their own
# prefix (`polarity_word`, tasks/pretraining.py; train split only).
register_mixture("movie_and_polarity_word", [task(TRAIN_DOMAIN), "polarity_word"])
