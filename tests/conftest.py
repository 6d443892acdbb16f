from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def base_config() -> dict:
    with open(REPO / "config.yaml") as fh:
        return yaml.safe_load(fh)


def write_tiny_sr_dataset(root: Path, image, seed: int) -> Path:
    """A dataset folder like the data stage writes, 32x32 HR with x4 LR: train 12, val 3,
    test 3 images, one subject each, classes CN/MCI/AD in turn. ``image(rng, xx, yy)`` draws
    one HR image from the pixel grids (values in [0, 1])."""
    import json

    import numpy as np
    import pandas as pd

    from srda.data.degrade import downscale
    from srda.shards import write_shard

    classes = ["CN", "MCI", "AD"]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    for split, n in (("train", 12), ("val", 3), ("test", 3)):
        hr = np.stack([image(rng, xx, yy) for _ in range(n)]).astype(np.float32)
        write_shard(root / f"{split}_hr.npy", hr)
        write_shard(root / "x4" / f"{split}_lr.npy", downscale(hr, 4))
        pd.DataFrame(
            {
                "index": range(n),
                "subject": [f"{split}{i}" for i in range(n)],
                "image": [f"{split}{i}" for i in range(n)],
                "slice": 0,
                "label": [classes[i % 3] for i in range(n)],
            }
        ).to_csv(root / f"{split}_meta.csv", index=False)
    (root / "dataset.json").write_text(json.dumps({"classes": classes}))
    return root
