import numpy as np
import pytest

from srda.errors import InputError
from srda.shards import ShardWriter, read_shard, write_shard


def test_writer_appends_batches_into_one_memory_mapped_npy(tmp_path):
    path = tmp_path / "train_hr.npy"
    rng = np.random.default_rng(0)
    parts = [rng.random((n, 8, 8), dtype=np.float32) for n in (3, 1, 5)]
    with ShardWriter(path) as writer:
        for part in parts:
            writer.append(part)
    out = read_shard(path)
    assert isinstance(out, np.memmap) and out.shape == (9, 8, 8) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.concatenate(parts))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_hr.npy"]


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "x.npy"
    with pytest.raises(RuntimeError), ShardWriter(path) as writer:
        writer.append(np.zeros((2, 4, 4)))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_mismatched_image_size_is_refused(tmp_path):
    writer = ShardWriter(tmp_path / "x.npy")
    writer.append(np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="image shape"):
        writer.append(np.zeros((1, 5, 4)))
    writer.abort()


def test_read_shard_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.npy: shard not found"):
        read_shard(tmp_path / "missing.npy")
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy")
    with pytest.raises(InputError, match="bad.npy: not a readable"):
        read_shard(bad)
    write_shard(tmp_path / "flat.npy", np.zeros(4))
    with pytest.raises(InputError, match="expected a 3-D shard"):
        read_shard(tmp_path / "flat.npy")
