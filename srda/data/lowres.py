"""LR images of a prepared dataset under a degradation other than the data stage's bicubic.

The data stage writes bicubic LR beside the HR shards; this stage reads those HR shards back
and writes, for one scale and one registered model (``srda.data.degrade``), every split's LR
shard and a ``degradation.json`` recording the resolved parameters, into ``out_dir``. All of it
is staged and moved into place only when every split succeeded.

What a model needs from the dataset comes from the data stage's own files: the modality from
``dataset.json`` (a model that does not fit it is refused), and for ``pet`` each slice's HR
pixel side from ``{split}_meta.csv`` (``pixel_mm``, which varies per volume because of the
crop to the head), unless the parameters fix ``voxel_mm``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from srda import layout
from srda.data import degrade as models
from srda.errors import InputError
from srda.layout import SPLITS
from srda.shards import ShardWriter, read_meta, read_shard

logger = logging.getLogger(__name__)

#: Parameters a model takes from each slice's metadata when the configuration leaves them out.
FROM_META = {"pet": {"voxel_mm": "pixel_mm"}}


def _runs(keys: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal consecutive rows of ``keys`` (n, k) (a volume's
    slices are one run)."""
    if len(keys) == 0:
        return []
    edges = np.flatnonzero((keys[1:] != keys[:-1]).any(axis=1)) + 1
    bounds = [0, *edges.tolist(), len(keys)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _per_slice(kind: str, params: dict[str, Any], meta_path: Path, n: int) -> dict[str, Any]:
    """The per-slice values of the parameters ``kind`` takes from the metadata (none given)."""
    wanted = {p: col for p, col in FROM_META.get(kind, {}).items() if p not in params}
    if not wanted:
        return {}
    meta = read_meta(meta_path)
    out = {}
    for param, column in wanted.items():
        values = meta[column].to_numpy(float) if column in meta else np.full(len(meta), np.nan)
        if len(values) != n or not np.isfinite(values).all():
            raise InputError(
                meta_path,
                f"degradation {kind!r} needs each slice's {column} (its {param}); set the "
                f"dataset's {column} or the degradation's {param}",
            )
        out[param] = values
    return out


def degrade_split(
    hr: np.ndarray,
    scale: int,
    kind: str,
    params: dict[str, Any],
    seed: int,
    first_index: int,
    per_slice: dict[str, np.ndarray],
    out: ShardWriter,
) -> None:
    """Degrade one split's HR shard into ``out``, a run of slices sharing their per-slice
    parameters (one volume) at a time; image ``i`` draws the noise of index ``first_index + i``."""
    keys = np.stack(list(per_slice.values()), axis=1) if per_slice else np.zeros((len(hr), 0))
    for start, stop in _runs(keys):
        here = {name: float(values[start]) for name, values in per_slice.items()}
        lr = models.degrade(
            hr[start:stop], scale, kind, seed, first_index=first_index + start, **params, **here
        )
        out.append(lr)


def write_degraded(
    data_dir: Path | str, scale: int, kind: str, params: dict[str, Any], seed: int, out_dir: Path
) -> dict[str, Any]:
    """Every split's LR shard of ``data_dir`` under model ``kind`` into ``out_dir``
    (``{split}_lr.npy`` and ``degradation.json``); returns what degradation.json records.

    Splits are numbered one after another (train, val, test) for the noise, so every image of
    the dataset draws its own stream from ``seed``."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    info_path = layout.dataset_json(data_dir)
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(info_path, f"cannot read the data stage's summary: {exc}") from exc
    try:
        models.check_fits(kind, info["modality"])
        resolved = models.resolve_params(kind, **params)
    except ValueError as exc:
        raise InputError(info_path, f"dataset {info.get('name', data_dir.name)}: {exc}") from exc
    given = {k: v for k, v in resolved.items() if k in params or k not in FROM_META.get(kind, {})}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    try:
        first = 0
        for split in SPLITS:
            hr = read_shard(layout.hr_shard(data_dir, split))
            per_slice = _per_slice(kind, params, layout.meta_csv(data_dir, split), len(hr))
            with ShardWriter(layout.lr_split_shard(stage, split)) as out:
                degrade_split(hr, scale, kind, given, seed, first, per_slice, out)
            first += len(hr)
        record = {
            "kind": kind,
            "scale": scale,
            "seed": seed,
            "params": given,
            "from_meta": {p: c for p, c in FROM_META.get(kind, {}).items() if p not in params},
            "stochastic": models.is_stochastic(kind, **params),
        }
        layout.degradation_json(stage).write_text(json.dumps(record, indent=2))
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(stage.iterdir()):
            path.replace(out_dir / path.name)
        logger.info("%s: x%d %s LR written (%d images)", data_dir.name, scale, kind, first)
        return record
    finally:
        shutil.rmtree(stage, ignore_errors=True)
