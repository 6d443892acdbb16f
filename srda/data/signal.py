"""How much of the embedded cohort's class signal an LR image loses: a calibration check that
needs no classifier.

The class signal of a subject is the difference between its HR slices drawn as AD and as CN
(the same random draws: only the disease amplitudes differ, and noise is switched off). The
LR image is linear in the HR image, so the LR keeps of that difference exactly what bicubic
down-and-up keeps. The **lost share** is ``||D - up(down(D))||^2 / ||D||^2`` summed over the
slices of several subjects: 0 when LR shows the whole class difference (a coarse pattern),
1 when none of it survives (detail finer than an LR pixel). Slices are made by the data
stage's own code, at the dataset's ``hr_size``, so the pixel sizes are the pipeline's.

A benchmark can only rank SR methods by diagnosis if the HR images carry class information
the LR images lack; docs/cohort.md relates this share to the measured HR - LR accuracy gap.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from srda.data import synthetic
from srda.data.degrade import imresize
from srda.data.slicing import image_to_hr, normalise, thin_evenly, volume_to_slices
from srda.errors import InputError

#: Class indices of the two ends of the disease scale (CN and AD, or their 2D names).
_HEALTHY, _DISEASED = 0, 2


@dataclass(frozen=True)
class ClassSignal:
    """The class signal of one dataset at one scale (see the module's docstring)."""

    dataset: str
    scale: int
    pairs: int  # subjects drawn twice, as CN and as AD
    slices: int  # HR slice pairs the sums run over
    lost_share: float  # share of ||AD - CN||^2 that x{scale} down-and-up removes
    signal_rms: float  # rms of AD - CN over the head, in HR intensity units ([0, 1])


def lost_share(healthy: np.ndarray, diseased: np.ndarray, scale: int) -> tuple[float, float]:
    """(lost share, rms of the difference over pixels where either image is non-zero) of HR
    image pairs ``(..., H, W)``; H and W must divide by ``scale``."""
    diff = diseased.astype(np.float64) - healthy.astype(np.float64)
    h, w = diff.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} does not divide by scale {scale}")
    energy = float((diff**2).sum())
    if energy <= 1e-12 * float((healthy.astype(np.float64) ** 2).sum()):  # rounding only
        raise ValueError("the two images are identical: there is no class signal")
    kept = imresize(imresize(diff, 1.0 / scale), float(scale))
    head = (healthy > 0) | (diseased > 0)
    rms = float(np.sqrt((diff[head] ** 2).mean())) if head.any() else 0.0
    return float(((diff - kept) ** 2).sum()) / energy, rms


def _quiet(subj: synthetic.Subject) -> synthetic.Subject:
    return dataclasses.replace(subj, noise=0.0)  # noise would swamp the difference


def _volume_pair(settings: dict, index: int) -> tuple[np.ndarray, np.ndarray]:
    """HR slices of subject ``index`` drawn as CN and as AD, paired slice by slice."""
    syn, modality = settings["synthetic"], settings["modality"]
    if settings["plane"] != "axial":
        raise InputError("plane", f"the check slices axially, got {settings['plane']!r}")
    vols = []
    for label in (_HEALTHY, _DISEASED):
        subj = synthetic.draw_configured(syn, modality, index, label)
        vol, _, _ = synthetic.make_volume(_quiet(subj), modality, syn["voxel_mm"], syn["seed"])
        vols.append(normalise(vol, tuple(settings["clip_percentiles"])))
    # Both volumes through one slicing call (each already normalised as the data stage does):
    # one crop box and one resampling, so that slice k of CN and of AD line up pixel for pixel.
    depth = vols[0].shape[2]
    zoom = float(syn["voxel_mm"])
    sl = volume_to_slices(
        np.concatenate(vols, axis=2),
        (zoom, zoom, zoom),
        "axial",
        settings["hr_size"],
        settings["min_brain_fraction"],
        None,
        (0.0, 100.0),
    )
    at = {int(k): i for i, k in enumerate(sl.slice_index)}
    both = np.array([k for k in at if k < depth and k + depth in at])
    both = thin_evenly(both, settings.get("slices_per_volume"))  # the levels the data stage keeps
    return sl.images[[at[k] for k in both]], sl.images[[at[k + depth] for k in both]]


def _image_pair(settings: dict, index: int) -> tuple[np.ndarray, np.ndarray]:
    syn = settings["synthetic"]
    out = []
    for label in (_HEALTHY, _DISEASED):
        subj = synthetic.draw_subject(
            syn["seed"], "slices", index, label, syn["severity"], syn.get("markers")
        )
        image, _ = synthetic.make_slice(_quiet(subj), syn["seed"])
        out.append(image_to_hr(image.astype(np.float32) / 255.0, settings["hr_size"]).images)
    return out[0], out[1]


def class_signal(settings: dict, scale: int, pairs: int = 6) -> ClassSignal:
    """The class signal of a ``source: synthetic`` dataset's resolved settings at ``scale``,
    over its first ``pairs`` subjects."""
    name = settings.get("name", "dataset")
    if settings.get("source") != "synthetic":
        raise InputError(name, "the class-signal check needs source: synthetic")
    if pairs < 1:
        raise InputError("pairs", f"must be >= 1, got {pairs}")
    if float(settings["synthetic"]["severity"]) == 0.0:
        raise InputError(name, "severity is 0: CN and AD are drawn alike, there is no signal")
    make = _volume_pair if settings["synthetic"]["kind"] == "volumes" else _image_pair
    healthy, diseased = zip(*(make(settings, i) for i in range(1, pairs + 1)), strict=True)
    cn, ad = np.concatenate(healthy), np.concatenate(diseased)
    try:
        share, rms = lost_share(cn, ad, scale)
    except ValueError as exc:  # every marker weight 0, or an hr_size that scale does not divide
        raise InputError(name, str(exc)) from exc
    return ClassSignal(name, int(scale), pairs, len(cn), share, rms)
