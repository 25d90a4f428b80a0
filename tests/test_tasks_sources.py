"""Where data comes from: the source switch, clear errors, and TFDS parity of the readers."""

import pathlib
from unittest import mock

import gin
import pytest
import seqio
import tensorflow_datasets as tfds
from tasks_helpers import DATA, environment, raw_files, run_task, texts

import prompt_tuning.tasks  # noqa: F401  (registers the tasks)
from prompt_tuning import configurables  # noqa: F401  (gin's data_options)
from prompt_tuning.data import DataNotFoundError, TaskSource, data_options, readers


def sources() -> dict[str, TaskSource]:
    """One registered TaskSource per TFDS dataset."""
    found = {}
    for name in seqio.TaskRegistry.names():
        source = seqio.TaskRegistry.get(name).source
        if isinstance(source, TaskSource):
            found.setdefault(source.tfds_name, source)
    return found


@pytest.fixture
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def test_source_defaults_follow_the_environment():
    with environment(PROMPT_TUNING_DATA_SOURCE=None, PROMPT_TUNING_DATA_DIR=None):
        assert data_options().kind == "tfds"
    with environment(PROMPT_TUNING_DATA_SOURCE=None, PROMPT_TUNING_DATA_DIR="/data"):
        assert data_options() == data_options(source="files", data_dir="/data")
    with environment(PROMPT_TUNING_DATA_SOURCE="tfds", PROMPT_TUNING_DATA_DIR="/data"):
        assert data_options().kind == "tfds"


def test_gin_bindings_win_over_the_environment(clean_gin):
    gin.parse_config(
        [
            "prompt_tuning.data.data_options.source = 'files'",
            f"prompt_tuning.data.data_options.data_dir = '{DATA}'",
        ]
    )
    with environment(PROMPT_TUNING_DATA_SOURCE="tfds", PROMPT_TUNING_DATA_DIR="/elsewhere"):
        assert texts(run_task("glue_rte_v002", "validation"))[0][1] == "entailment"


def test_bad_source_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"'hf' .* is not one of"):
        data_options(source="hf")
    with (
        environment(PROMPT_TUNING_DATA_DIR=None),
        pytest.raises(DataNotFoundError, match="export PROMPT_TUNING_DATA_DIR=DIR"),
    ):
        data_options(source="files")


def test_missing_original_file_says_where_it_was_expected_and_how_to_get_it(tmp_path):
    with raw_files(tmp_path), pytest.raises(DataNotFoundError) as error:
        run_task("super_glue_rte_v102", "validation")
    message = str(error.value)
    assert f"{tmp_path}/super_glue/RTE/val.jsonl does not exist" in message
    assert "RTE.zip" in message
    assert "super_glue/rte:1.0.2" in message
    assert "PROMPT_TUNING_DATA_SOURCE=tfds" in message


def test_missing_mrqa_file_names_the_release_file(tmp_path):
    with raw_files(tmp_path), pytest.raises(DataNotFoundError, match=r"mrqa/dev/BioASQ\.jsonl\.gz"):
        run_task("mrqa_bio_asq_v100", "validation")


def test_unprepared_tfds_dataset_says_how_to_provide_it(tmp_path, clean_gin):
    gin.parse_config([f"prompt_tuning.data.data_options.tfds_data_dir = '{tmp_path}'"])
    with environment(PROMPT_TUNING_DATA_SOURCE="tfds"), pytest.raises(DataNotFoundError) as error:
        run_task("glue_cola_v002", "validation")
    message = str(error.value)
    assert f"glue/cola:2.0.0 is not prepared in {tmp_path}" in message
    assert "DIR/glue/CoLA/dev.tsv" in message


def test_a_split_the_dataset_lacks_is_an_error():
    with raw_files(DATA), pytest.raises(ValueError, match=r"mrqa/drop has no split 'train'"):
        run_task("mrqa_drop_v100", "train")


@pytest.mark.parametrize(
    ("task", "tfds_name", "splits"),
    [
        ("super_glue_rte_v102", "super_glue/rte:1.0.2", {"train", "validation", "test"}),
        ("super_glue_wsc_v102", "super_glue/wsc.fixed:1.0.2", {"train", "validation", "test"}),
        ("super_glue_wsc_v102_simple_train", "super_glue/wsc.fixed:1.0.2", {"train"}),
        ("super_glue_wsc_v102_simple_eval", "super_glue/wsc.fixed:1.0.2", {"validation", "test"}),
        ("super_glue_axb_v102", "super_glue/axb:1.0.2", {"test"}),
        ("glue_mnli_v002", "glue/mnli:2.0.0", set(readers.GLUE["mnli"].files)),
        ("glue_ax_v002", "glue/ax:2.0.0", {"test"}),
        ("glue_mrpc_from_qqp_v002", "glue/mrpc:2.0.0", {"validation"}),
        ("mrqa_squad_v100", "mrqa/squad:1.0.0", {"train", "validation"}),
        ("mrqa_bio_asq_v100", "mrqa/bio_asq:1.0.0", {"validation"}),
        ("glue_mnli_matched_v002", "glue/mnli_matched:2.0.0", {"validation", "test"}),
        ("glue_mnli_mismatched_v002", "glue/mnli_mismatched:2.0.0", {"validation", "test"}),
        ("glue_wnli_v002_simple_eval", "glue/wnli:2.0.0", {"validation", "test"}),
        ("squad_v010_allanswers_span", "squad/v1.1:3.0.0", {"train", "validation"}),
    ],
)
def test_tfds_names_and_splits(task, tfds_name, splits):
    source = seqio.TaskRegistry.get(task).source
    assert source.tfds_name == tfds_name
    assert set(source.splits) == splits


def test_readers_produce_the_features_of_the_tfds_builders():
    for tfds_name, source in sources().items():
        spec = tfds.builder(tfds_name).info.features.get_tensor_spec()
        for key, want in source.raw.signature.items():
            assert spec[key] == want, (tfds_name, key)


# ----------------------------------------------------------------------------------
# Parity: the real TFDS builders prepare the same small files, and each task reads
# the same examples from TFDS as from the files.


class _Downloads:
    """What TFDS's downloads resolve to here: files in tests/data."""

    def __init__(self, tfds_name: str, scratch: pathlib.Path):
        self._config = tfds_name.split("/")[1].split(":")[0]
        self._benchmark = tfds_name.split("/")[0]
        self._scratch = scratch

    def download_and_extract(self, urls):
        if self._benchmark == "squad":
            return {key: str(DATA / "squad" / f"{key}-v1.1.json") for key in urls}
        if self._benchmark == "mrqa":
            stem = readers.MRQA_FILES[self._config]
            folder = {"train": "train", "validation": "dev", "test": "dev"}
            return {split: str(DATA / "mrqa" / folder[split] / f"{stem}.jsonl") for split in urls}
        return str(DATA / self._benchmark)

    def download(self, urls):
        if self._config == "ax":
            return str(DATA / "glue" / "diagnostic" / "diagnostic.tsv")
        return self._mrpc_sources()

    def _mrpc_sources(self) -> dict[str, str]:
        # TFDS builds MRPC from Microsoft's files: train + dev in one file (which
        # starts with a byte-order mark TFDS skips), plus a list of the dev pairs.
        # Rebuild those from the GLUE split files.
        glue = DATA / "glue" / "MRPC"
        train, dev = (glue / "train.tsv").read_text(), (glue / "dev.tsv").read_text()
        dev_rows = [line.split("\t") for line in dev.splitlines()[1:]]
        files = {
            "train": "\ufeff" + train + "".join(line + "\n" for line in dev.splitlines()[1:]),
            "dev_ids": "".join(f"{row[1]}\t{row[2]}\n" for row in dev_rows),
            "test": (glue / "test.tsv").read_text(),
        }
        for key, content in files.items():
            (self._scratch / key).write_text(content)
        return {key: str(self._scratch / key) for key in files}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


def _prepare(tfds_name: str, tfds_dir: pathlib.Path, scratch: pathlib.Path) -> None:
    builder = tfds.builder(tfds_name, data_dir=str(tfds_dir))
    if not builder.is_prepared():
        resolver = _Downloads(tfds_name, scratch)
        # TFDS also reads bookkeeping attributes (sizes, paths) off the manager.
        downloads = mock.MagicMock(downloaded_size=0)
        downloads.download_and_extract.side_effect = resolver.download_and_extract
        downloads.download.side_effect = resolver.download
        with mock.patch.object(
            tfds.core.DatasetBuilder, "_make_download_manager", return_value=downloads
        ):
            builder.download_and_prepare()


def _sorted_examples(task: str, split: str, with_idx: bool) -> list[tuple]:
    """Every example's strings and ids (the Task's order, not TFDS's), sorted."""
    rows = []
    for example in run_task(task, split):
        keys = sorted(
            k for k in example if k not in ("inputs", "targets") and (with_idx or "idx" not in k)
        )
        rows.append(tuple(str(example[k]) for k in keys))
    return sorted(rows)


PARITY = sorted(
    {
        (name, source.tfds_name)
        for name in seqio.TaskRegistry.names()
        if isinstance(source := seqio.TaskRegistry.get(name).source, TaskSource)
        and not name.endswith(("_taskless", "_sentinel"))
        and "_1_sentinel" not in name
    }
)


@pytest.mark.slow
@pytest.mark.parametrize(("task", "tfds_name"), PARITY)
def test_tfds_and_original_files_give_the_same_examples(task, tfds_name, tfds_dir, tmp_path):
    _prepare(tfds_name, tfds_dir, tmp_path)
    # TFDS numbers MRPC rows within Microsoft's combined file, GLUE within each split file.
    with_idx = tfds_name != "glue/mrpc:2.0.0"
    for split in seqio.TaskRegistry.get(task).splits:
        with raw_files(DATA):
            from_files = _sorted_examples(task, split, with_idx)
        with environment(PROMPT_TUNING_DATA_SOURCE="tfds", TFDS_DATA_DIR=str(tfds_dir)):
            from_tfds = _sorted_examples(task, split, with_idx)
        assert from_files, (task, split)
        assert from_tfds == from_files, (task, split)


def test_parity_covers_every_dataset():
    assert {tfds_name for _, tfds_name in PARITY} == set(sources())
