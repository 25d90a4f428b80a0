"""Loading straight into shards on a (data=4, model=2) mesh of the 8 virtual CPU devices."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from prompt_tuning import checkpoints, models, partitioning
from prompt_tuning.checkpoints import lazy

# Every sharded dimension divides by 4, so any rule mapping onto either mesh axis fits.
CONFIG = models.T5Config(
    vocab_size=64, d_model=8, num_heads=4, d_kv=4, d_ff=16,
    num_encoder_layers=2, num_decoder_layers=2, relative_attention_num_buckets=8,
)  # fmt: skip
# Shards `embed` over 'data' as well, so 2-D weights are split along both axes.
FSDP_RULES = (("embed", "data"), *(r for r in partitioning.DEFAULT_RULES if r[0] != "embed"))


@pytest.fixture(scope="module")
def mesh():
    return partitioning.make_mesh((4, 2))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The same random params in the three on-disk formats."""
    rng = np.random.default_rng(0)
    params = jax.tree.map(
        lambda s: rng.standard_normal(s.shape).astype(s.dtype), models.param_shapes(CONFIG)
    )
    root = tmp_path_factory.mktemp("sharded")
    return params, {
        "t5x": checkpoints.save_t5x(params, root / "t5x", step=0),
        "orbax_t5x": checkpoints.save_orbax_t5x(params, root / "orbax", step=0),
        "hf": checkpoints.save_hf(CONFIG, params, root / "hf"),
    }


@pytest.mark.parametrize("rules", [None, FSDP_RULES], ids=["default_rules", "fsdp_rules"])
@pytest.mark.parametrize("fmt", ["t5x", "orbax_t5x", "hf"])
def test_sharded_load_matches_rules_and_values(fmt, rules, saved, mesh):
    params, folders = saved
    config, sharded = checkpoints.load(folders[fmt], mesh=mesh, rules=rules)
    assert config == CONFIG
    expected = partitioning.logical_to_sharding(
        models.logical_axes(CONFIG), mesh, partitioning.DEFAULT_RULES if rules is None else rules
    )
    leaves = jax.tree.leaves(sharded)
    assert all(isinstance(x, jax.Array) for x in leaves)
    for x, want in zip(leaves, jax.tree.leaves(expected), strict=True):
        assert x.sharding.is_equivalent_to(want, x.ndim), (x.sharding, want)
    for x, y in zip(leaves, jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), y)


def test_rules_actually_split_the_big_weights(saved, mesh):
    _, sharded = checkpoints.load(saved[1]["t5x"], mesh=mesh, rules=FSDP_RULES)
    embedding = sharded["token_embedder"]["embedding"]  # ('vocab', 'embed') -> (model, data)
    assert embedding.sharding.spec == PartitionSpec("model", "data")
    assert {s.data.shape for s in embedding.addressable_shards} == {(32, 2)}


def test_sharded_dtype_cast(saved, mesh):
    config, sharded = checkpoints.load(saved[1]["hf"], mesh=mesh, dtype="bfloat16")
    assert config.param_dtype == "bfloat16"
    assert {x.dtype for x in jax.tree.leaves(sharded)} == {np.dtype("bfloat16")}


def test_each_device_reads_only_its_shard(mesh):
    """The lazy reader is asked for shard-sized regions, never for the whole array."""
    full = np.arange(64 * 8, dtype=np.float32).reshape(64, 8)
    regions = []

    def read(index):
        regions.append(full[index].shape)
        return full[index]

    array = lazy.LazyArray("w", full.shape, full.dtype, read)
    sharding = jax.sharding.NamedSharding(mesh, PartitionSpec("model", "data"))
    out = lazy.materialize({"w": array}, {"w": sharding})["w"]
    np.testing.assert_array_equal(np.asarray(out), full)
    assert regions and set(regions) == {(32, 2)}


def test_transposed_lazy_array_reads_the_mirror_region():
    full = np.arange(12, dtype=np.float32).reshape(3, 4)
    asked = []
    array = lazy.LazyArray("w", full.shape, full.dtype, lambda i: asked.append(i) or full[i])
    region = array.T.read((slice(1, 3), slice(0, 2)))
    np.testing.assert_array_equal(region, full.T[1:3, 0:2])
    assert asked == [(slice(0, 2), slice(1, 3))]
    np.testing.assert_array_equal(np.asarray(array.T), full.T)
