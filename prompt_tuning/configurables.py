"""The library functions that gin files name, registered where the jobs parse gin.

The library below the jobs does not import gin; this module gives gin its names
for them (`gin_utils` imports it, so every parsed gin file can use them):

  shipped_checkpoint               `checkpoints.shipped_checkpoint`, for
                                   `INITIAL_CHECKPOINT_PATH = @shipped_checkpoint()`
  prompt_tuning.data.task_name     `data.resolve_task_name`: the task variant a
                                   checkpoint needs (`objective`, `taskless`)
  prompt_tuning.data.data_options  `data.sources.data_options`: where task data is
                                   read from (`source`, `data_dir`, `tfds_data_dir`)

The names are the ones the gin files and saved `config.gin` files have always used.
"""

from __future__ import annotations

import gin

from prompt_tuning.checkpoints import shipped
from prompt_tuning.data import registry, sources


@gin.configurable("shipped_checkpoint", module=shipped.__name__)
def shipped_checkpoint(name: str = gin.REQUIRED) -> str:
    """`checkpoints.shipped_checkpoint`; a model file that omits `name` is a gin error."""
    return shipped.shipped_checkpoint(name)


task_name = gin.external_configurable(
    registry.resolve_task_name, "task_name", module="prompt_tuning.data"
)
data_options = gin.external_configurable(
    sources.data_options, "data_options", module="prompt_tuning.data"
)
# Data is opened deep inside seqio, long after the job starts; a TaskSource asks
# for its options then, so the run's gin bindings are the ones in force.
sources.set_options_resolver(data_options)
