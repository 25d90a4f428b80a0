"""A quiet console for the command-line jobs: only the project's own lines are printed.

`quiet()` runs first in every entry point (`python -m prompt_tuning.train`,
`eval`, `infer`, `pretrain`, `demo`), before TensorFlow and JAX are imported:

- TensorFlow's C++ start-up lines (absl's "All log messages before
  absl::InitializeLog()", oneDNN and CUDA-stub notices) are written to file
  descriptor 2 while it loads, before any log level applies: stderr points to
  /dev/null for the duration of that import only;
- TensorFlow, which only reads data here, sees no GPU (no CUDA probing and its
  log lines; T5X does the same), and XLA's C++ log shows fatal errors only;
- the Python loggers of libraries (absl's, which seqio, Orbax and TFDS use,
  TensorFlow's) show errors only and JAX's critical ones only, so their warnings (e.g. seqio's
  advice to cache a task, repeated once per data shard) do not reach the console;
- Python warnings raised outside this package are ignored, and the package's
  own appear once per place.

Errors still surface: exceptions are unaffected, and the jobs print their own
`error:` line (`cli.run_main`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import warnings
from collections.abc import Iterator

LIBRARY_LOGGERS = ("absl", "tensorflow", "orbax", "seqio")


@contextlib.contextmanager
def _stderr_discarded() -> Iterator[None]:
    """Points file descriptor 2 (what C++ code writes to) at /dev/null inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet() -> None:
    """Silences what TensorFlow, absl and the libraries print on their own (see the module doc)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"prompt_tuning(\.|$)")
    if "tensorflow" not in sys.modules:
        with _stderr_discarded():
            import tensorflow as tf

            # TensorFlow only reads data here: it must not probe (and log about) GPUs.
            tf.config.set_visible_devices([], "GPU")
    import jax

    # XLA's own C++ log (e.g. its "Very slow compile?" alarm under load): fatal errors only.
    jax.config.update("jax_logging_level", "CRITICAL")
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def clock(seconds: float) -> str:
    """`seconds` as hours:minutes:seconds for progress lines (hours keep counting past 24)."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:{secs:02d}"
