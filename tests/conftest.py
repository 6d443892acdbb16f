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


def snakemake_failure(work: Path, args, stdout: str, stderr: str) -> str:
    """What a failed Snakemake run says, the failed jobs' own logs last: CI shows only the
    tail of the output, and a module fixture's error repeats for each of its tests."""
    import re

    output = f"{stdout}\n{stderr}"
    failed = []
    log_line = re.compile(r"^\s*log: (.+?)(?: \(check log file\(s\) for error details\))?$", re.M)
    for rule, body in re.findall(r"Error in rule (\S+?):\n((?:[ \t]+.*\n?)*)", output):
        logs = log_line.findall(body)
        for entry in logs:
            for name in entry.split(", "):
                path = work / name.strip()
                text = path.read_text()[-4000:] if path.is_file() else "(no log file)"
                failed.append(f"--- rule {rule}, log {name.strip()}:\n{text}")
        if not logs:
            failed.append(f"--- rule {rule} (no log):\n{body[-2000:]}")
    return f"snakemake {' '.join(args)} failed:\n{stdout[-4000:]}\n{stderr[-8000:]}\n" + "\n".join(
        failed or ["(no 'Error in rule' block in the output)"]
    )
