"""Disease effect sizes of the embedded cohort, measured and set against the literature.

A benchmark whose classes differ by three times the atrophy real patients show says nothing
about real scans, so the cohort's effects are measured the way an imaging study would measure
them, on subjects drawn by the generator's own functions with a dataset's resolved settings:

- hippocampal and lateral-ventricle volume (mm^3; on the 2D set, area in mm^2) from the ROI
  mask the cohort writes (labels 1 and 2);
- the AD cortical regions (label 3): their grey-matter volume, a sheet-thickness proxy
  ``2 V / A`` (A: surface area of the label by marching cubes; in 2D ``2 area / perimeter``),
  and the generator's nominal pial recession there (its cortex amplitude, in mm: a setting,
  not a measurement, reported because the template's blurred cortex is not a resolved sheet);
- PET only: FDG uptake in the AD regions relative to a cerebellar reference box (SUVR).

Each quantity is summarised per class (mean, sd) with its effect against CN (ratio, drop in %
or difference in mm) and a subject-bootstrap 95 % interval. By default every subject is drawn
once as each class (paired: the draws never depend on the class, so at severity 0 every ratio
is exactly 1); ``paired=False`` draws the cohort's own subjects, classes round-robin.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from skimage import measure
from tqdm import tqdm

from srda.data import synthetic
from srda.errors import InputError
from srda.report.tables import to_markdown

logger = logging.getLogger(__name__)

#: Cerebellar reference box for PET SUVR (MNI mm, both hemispheres): inside the cerebellum of
#: the atlas (cortex and white matter) with >= 10 mm margin, far from the AD regions; the
#: cohort's disease never reaches it.
CEREBELLUM_BOX_MM = ((10.0, 40.0), (-75.0, -55.0), (-42.0, -28.0))


@dataclass(frozen=True)
class Quantity:
    """One measured quantity, how its effect against CN is expressed, and its target."""

    key: str
    title: str
    unit: str
    effect: str  # "ratio" (class / CN), "drop" (100 (1 - class / CN), %), "diff" (class - CN)
    target: tuple[float, float] | None  # range the AD effect must fall in (inclusive)
    source: str = ""

    @property
    def effect_label(self) -> str:
        return {"ratio": "x / CN", "drop": "drop vs CN (%)", "diff": "x - CN (mm)"}[self.effect]


#: Literature targets of issue 15 (docs/cohort.md, "Effect sizes against the literature").
HIPPOCAMPUS_TARGET = (0.70, 0.85)
VENTRICLES_TARGET = (1.2, 2.0)
FDG_DROP_TARGET = (10.0, 25.0)
THINNING_LIMIT_MM = (0.0, 0.5)


def quantities(kind: str, modality: str) -> list[Quantity]:
    """The quantities measured on a dataset: volumes in 3D, areas in 2D, FDG for PET."""
    size, unit = ("volume", "mm^3") if kind == "volumes" else ("area", "mm^2")
    out = [
        Quantity(
            "hippocampus",
            f"hippocampal {size}",
            unit,
            "ratio",
            HIPPOCAMPUS_TARGET,
            "Shi et al. 2009",
        ),
        Quantity(
            "ventricles",
            f"lateral ventricle {size}",
            unit,
            "ratio",
            VENTRICLES_TARGET,
            "Nestor et al. 2008",
        ),
        Quantity("cortex_gm", f"AD-region grey matter {size} (label 3)", unit, "ratio", None),
        Quantity(
            "cortex_sheet",
            "AD-region sheet thickness " + ("2V/A" if kind == "volumes" else "2A/P"),
            "mm",
            "diff",
            None,
        ),
        Quantity(
            "cortex_nominal",
            "AD-region pial recession (nominal, generator amplitude)",
            "mm",
            "diff",
            THINNING_LIMIT_MM,
            "Dickerson et al. 2009",
        ),
    ]
    if kind == "volumes" and modality == "pet":
        out.append(
            Quantity(
                "fdg_suvr",
                "FDG SUVR, AD regions / cerebellum",
                "ratio",
                "drop",
                FDG_DROP_TARGET,
                "Minoshima et al. 1997; Herholz et al. 2002",
            )
        )
    return out


@dataclass
class Effect:
    """One quantity of one dataset: per-class statistics, effects against CN, the verdict."""

    quantity: Quantity
    mean: dict[str, float]
    sd: dict[str, float]
    effect: dict[str, tuple[float, float, float]]  # class -> (value, ci_low, ci_high)
    in_target: bool | None  # AD effect inside the target range (None: no target)
    mci_between: bool  # the intermediate class strictly between CN and AD
    meets: bool | None  # in_target and mci_between (None: no target)


@dataclass
class DatasetCheck:
    """The effect sizes of one dataset's resolved synthetic settings."""

    dataset: str
    kind: str
    modality: str
    classes: tuple[str, str, str]
    subjects_per_class: int
    paired: bool
    settings: dict[str, Any]
    seconds: float
    effects: list[Effect] = field(default_factory=list)
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def missed(self) -> list[str]:
        """Keys of the quantities whose target is missed."""
        return [e.quantity.key for e in self.effects if e.meets is False]


# --------------------------------------------------------------------------- measurements


def _thickness_3d(mask: np.ndarray, voxel_mm: float) -> float:
    """``2 V / A`` of a binary mask: the thickness of a sheet whose two faces make up A."""
    if mask.sum() == 0:
        return float("nan")
    padded = np.pad(mask, 1).astype(np.float32)
    verts, faces, _, _ = measure.marching_cubes(padded, 0.5, spacing=(voxel_mm,) * 3)
    area = float(measure.mesh_surface_area(verts, faces))
    return 2.0 * float(mask.sum()) * voxel_mm**3 / area


def _thickness_2d(mask: np.ndarray) -> float:
    """``2 area / perimeter`` of a binary image mask (1 mm pixels)."""
    perimeter = float(measure.perimeter(mask))
    return 2.0 * float(mask.sum()) / perimeter if perimeter > 0 else float("nan")


def _box_mask(grid: synthetic.Grid, box_mm: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Voxels of a grid inside an MNI box mirrored across the midline (x as |x|)."""
    axes = [grid.affine[a, 3] + grid.affine[a, a] * np.arange(grid.shape[a]) for a in range(3)]
    x, y, z = (np.asarray(a) for a in axes)
    in_x = (np.abs(x) >= box_mm[0][0]) & (np.abs(x) <= box_mm[0][1])
    in_y = (y >= box_mm[1][0]) & (y <= box_mm[1][1])
    in_z = (z >= box_mm[2][0]) & (z <= box_mm[2][1])
    return in_x[:, None, None] & in_y[None, :, None] & in_z[None, None, :]


def measure_volume(
    vol: np.ndarray, mask: np.ndarray, grid: synthetic.Grid, modality: str
) -> dict[str, float]:
    """The measured quantities of one 3D subject (its volume, ROI mask and grid)."""
    voxel = float(abs(grid.affine[0, 0]))
    cc = voxel**3
    adc = mask == synthetic.ROI_AD_CORTEX
    out = {
        "hippocampus": float((mask == synthetic.ROI_HIPPOCAMPUS).sum()) * cc,
        "ventricles": float((mask == synthetic.ROI_VENTRICLES).sum()) * cc,
        "cortex_gm": float(adc.sum()) * cc,
        "cortex_sheet": _thickness_3d(adc, voxel),
    }
    if modality == "pet":
        ref = _box_mask(grid, CEREBELLUM_BOX_MM)
        if not ref.any() or not adc.any():
            raise InputError("cohort-check", "the PET grid holds no cerebellum or no AD region")
        out["fdg_suvr"] = float(vol[adc].mean()) / float(vol[ref].mean())
    return out


def measure_slice(roi: np.ndarray) -> dict[str, float]:
    """The measured quantities of one 2D subject (its ROI mask, 1 mm pixels)."""
    adc = roi == synthetic.ROI_AD_CORTEX
    return {
        "hippocampus": float((roi == synthetic.ROI_HIPPOCAMPUS).sum()),
        "ventricles": float((roi == synthetic.ROI_VENTRICLES).sum()),
        "cortex_gm": float(adc.sum()),
        "cortex_sheet": _thickness_2d(adc),
    }


def _draw(syn: dict, modality: str, kind: str, index: int, label: int) -> synthetic.Subject:
    domain = "slices" if kind == "slices" else modality
    return synthetic.draw_configured(syn, domain, index, label)


def _measure_subject(syn: dict, modality: str, kind: str, subj: synthetic.Subject) -> dict:
    if kind == "slices":
        _, roi = synthetic.make_slice(subj, syn["seed"])
        values = measure_slice(roi)
    else:
        vol, mask, grid = synthetic.make_volume(subj, modality, syn["voxel_mm"], syn["seed"])
        values = measure_volume(vol, mask, grid, modality)
    values["cortex_nominal"] = subj.amplitudes()["cortex"]
    return values


# --------------------------------------------------------------------------- statistics


def _effect_of(q: Quantity, cls: np.ndarray, cn: np.ndarray) -> np.ndarray:
    """Effect of class means against CN means (arrays broadcast: bootstrap replicates)."""
    if q.effect == "ratio":
        return cls / cn
    if q.effect == "drop":
        return 100.0 * (1.0 - cls / cn)
    return cls - cn


def _between(q: Quantity, mci: float, ad: float) -> bool:
    """MCI strictly between CN (no effect) and AD."""
    none = 1.0 if q.effect == "ratio" else 0.0
    return bool(min(none, ad) < mci < max(none, ad))


def summarise(
    q: Quantity,
    values: dict[str, np.ndarray],
    classes: tuple[str, str, str],
    paired: bool,
    boot: int = 2000,
    seed: int = 0,
) -> Effect:
    """Per-class mean and sd, effects of MCI and AD against CN with a subject bootstrap
    (paired: one resample of subjects shared by the classes; else one per class)."""
    cn_name = classes[0]
    rng = np.random.default_rng(seed)
    data = {c: np.asarray(values[c], dtype=np.float64) for c in classes}
    n = {c: len(v) for c, v in data.items()}
    if paired:
        idx = rng.integers(0, n[cn_name], size=(boot, n[cn_name]))
        picks = dict.fromkeys(classes, idx)
    else:
        picks = {c: rng.integers(0, n[c], size=(boot, n[c])) for c in classes}
    boot_means = {c: np.nanmean(data[c][picks[c]], axis=1) for c in classes}
    mean = {c: float(np.nanmean(v)) for c, v in data.items()}
    sd = {c: float(np.nanstd(v, ddof=1)) if n[c] > 1 else 0.0 for c, v in data.items()}
    effect: dict[str, tuple[float, float, float]] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for c in classes[1:]:
            value = float(_effect_of(q, np.float64(mean[c]), np.float64(mean[cn_name])))
            reps = _effect_of(q, boot_means[c], boot_means[cn_name])
            lo, hi = (
                np.nanpercentile(reps, [2.5, 97.5]) if np.isfinite(reps).any() else (np.nan,) * 2
            )
            effect[c] = (value, float(lo), float(hi))
    mci, ad = effect[classes[1]][0], effect[classes[2]][0]
    between = _between(q, mci, ad)
    in_target = None if q.target is None else bool(q.target[0] <= ad <= q.target[1])
    if q.effect == "diff" and q.target is not None and q.target[0] == 0.0:
        in_target = bool(0.0 < ad <= q.target[1])  # "at most": some effect, not above the limit
    meets = None if in_target is None else bool(in_target and between)
    return Effect(q, mean, sd, effect, in_target, between, meets)


# --------------------------------------------------------------------------- the check


def _settings_summary(settings: dict) -> dict[str, Any]:
    syn = settings["synthetic"]
    out: dict[str, Any] = {
        "kind": syn["kind"],
        "severity": float(syn["severity"]),
        "markers": synthetic.check_markers(syn.get("markers")),
        "seed": int(syn["seed"]),
    }
    if syn["kind"] == "volumes":
        out["voxel_mm"] = float(syn["voxel_mm"])
        if settings["modality"] == "pet":
            out["pet_fwhm_mm"] = list(synthetic.check_fwhm(syn.get("pet_fwhm_mm")))
            out["pet_regional_sd"] = synthetic.check_regional_sd(syn.get("pet_regional_sd"))
    return out


def check_dataset(
    settings: dict, subjects: int = 8, paired: bool = True, boot: int = 2000
) -> DatasetCheck:
    """Measure the effect sizes of a ``source: synthetic`` dataset's resolved settings on
    ``subjects`` subjects per class (see the module's docstring)."""
    name = settings.get("name", "dataset")
    if settings.get("source") != "synthetic":
        raise InputError(name, "the effect-size check needs source: synthetic")
    if int(subjects) < 2:
        raise InputError("--subjects", f"needs at least 2 subjects per class, got {subjects}")
    syn, modality = settings["synthetic"], str(settings["modality"]).lower()
    kind = syn["kind"]
    classes = synthetic.CLASSES_2D if kind == "slices" else synthetic.CLASSES_3D
    start = time.perf_counter()
    if paired:  # subject i drawn as every class
        jobs = [(i, k) for i in range(1, subjects + 1) for k in range(3)]
    else:  # the cohort's own subjects: class (i - 1) % 3
        jobs = [(i, (i - 1) % 3) for i in range(1, 3 * subjects + 1)]
    raw: dict[str, dict[str, list[float]]] = {}
    for index, label in tqdm(jobs, desc=f"cohort-check {name}", unit="draw", mininterval=2.0):
        subj = _draw(syn, modality, kind, index, label)
        for key, value in _measure_subject(syn, modality, kind, subj).items():
            raw.setdefault(key, {c: [] for c in classes})[classes[label]].append(float(value))
    check = DatasetCheck(
        dataset=name,
        kind=kind,
        modality=modality,
        classes=classes,
        subjects_per_class=int(subjects),
        paired=paired,
        settings=_settings_summary(settings),
        seconds=0.0,
        values=raw,
    )
    for q in quantities(kind, modality):
        arrays = {c: np.asarray(v) for c, v in raw[q.key].items()}
        check.effects.append(summarise(q, arrays, classes, paired, boot))
    check.seconds = time.perf_counter() - start
    logger.info(
        "cohort-check %s: %d draws in %.1f s, %d target(s) missed",
        name,
        len(jobs),
        check.seconds,
        len(check.missed),
    )
    return check


# --------------------------------------------------------------------------- reporting


def _fmt(x: float, unit: str) -> str:
    if not np.isfinite(x):
        return "–"
    if unit in ("mm^3", "mm^2"):
        return f"{x:,.0f}"
    return f"{x:.3f}" if unit == "ratio" else f"{x:.2f}"


def _fmt_effect(q: Quantity, value: tuple[float, float, float]) -> str:
    digits = 1 if q.effect == "drop" else 2
    v, lo, hi = value
    if not np.isfinite(v):
        return "–"
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _fmt_target(q: Quantity) -> str:
    if q.target is None:
        return "–"
    lo, hi = q.target
    if q.effect == "diff" and lo == 0.0:
        return f"0 < AD - CN <= {hi:g} mm"
    unit = " %" if q.effect == "drop" else ""
    return f"AD {lo:g}-{hi:g}{unit}"


def _verdict(e: Effect) -> str:
    if e.meets is None:
        return "MCI between" if e.mci_between else "MCI not between"
    if e.meets:
        return "**yes**"
    why = [] if e.in_target else ["AD outside"]
    why += [] if e.mci_between else ["MCI not between"]
    return "no (" + ", ".join(why) + ")"


def render_dataset(check: DatasetCheck) -> str:
    """A Markdown section: the settings line and one row per quantity."""
    s = check.settings
    bits = [f"severity {s['severity']:g}"]
    changed = {k: v for k, v in s["markers"].items() if v != synthetic.DEFAULT_MARKERS[k]}
    bits.append("markers " + (", ".join(f"{k} {v:g}" for k, v in changed.items()) or "default"))
    if "voxel_mm" in s:
        bits.append(f"{s['voxel_mm']:g} mm voxels")
    if "pet_fwhm_mm" in s:
        bits.append("PET FWHM {:g}-{:g} mm".format(*s["pet_fwhm_mm"]))
    design = "paired draws (each subject as every class)" if check.paired else "cohort subjects"
    cn, mci, ad = check.classes
    rows = [["quantity", "unit", cn, mci, ad, "effect", mci, ad, "target", "meets"]]
    for e in check.effects:
        q = e.quantity
        rows.append(
            [q.title, "" if q.unit == "ratio" else q.unit]
            + [f"{_fmt(e.mean[c], q.unit)} ± {_fmt(e.sd[c], q.unit)}" for c in check.classes]
            + [q.effect_label, _fmt_effect(q, e.effect[mci]), _fmt_effect(q, e.effect[ad])]
            + [_fmt_target(q), _verdict(e)]
        )
    intro = (
        f"{'; '.join(bits)}. {check.subjects_per_class} subjects per class, {design}; "
        f"{check.seconds:.1f} s."
    )
    return f"### {check.dataset}\n\n{intro}\n\n" + to_markdown(rows).rstrip("\n")


def render_summary(checks: list[DatasetCheck]) -> str:
    """One row per dataset: the effects that have targets, and how many are met."""
    rows = [
        [
            "dataset",
            "hippocampus AD/CN (MCI/CN)",
            "ventricles AD/CN (MCI/CN)",
            "AD-region GM AD/CN",
            "sheet thinning AD (mm)",
            "nominal recession AD (mm)",
            "FDG drop AD % (MCI %)",
            "targets met",
            "seconds",
        ]
    ]
    for c in checks:
        by = {e.quantity.key: e for e in c.effects}
        mci, ad = c.classes[1], c.classes[2]

        def pair(key: str, digits: int, by=by, mci=mci, ad=ad) -> str:
            if key not in by:
                return "–"
            e = by[key]
            return f"{e.effect[ad][0]:.{digits}f} ({e.effect[mci][0]:.{digits}f})"

        sheet = -by["cortex_sheet"].effect[ad][0]
        nominal = by["cortex_nominal"].effect[ad][0]
        targets = [e for e in c.effects if e.meets is not None]
        met = sum(bool(e.meets) for e in targets)
        rows.append(
            [c.dataset, pair("hippocampus", 2), pair("ventricles", 2)]
            + [f"{by['cortex_gm'].effect[ad][0]:.3f}", f"{sheet:.2f}", f"{nominal:.2f}"]
            + [pair("fdg_suvr", 1), f"{met}/{len(targets)}", f"{c.seconds:.1f}"]
        )
    return to_markdown(rows).rstrip("\n")


def render_markdown(checks: list[DatasetCheck]) -> str:
    """The full report: one section per dataset, then the summary."""
    parts = [render_dataset(c) for c in checks]
    parts.append("### Summary\n\n" + render_summary(checks))
    return "\n\n".join(parts) + "\n"


_PLAIN_FIELDS = (
    "dataset",
    "kind",
    "modality",
    "classes",
    "subjects_per_class",
    "paired",
    "settings",
    "seconds",
)


def to_json(checks: list[DatasetCheck]) -> dict[str, Any]:
    """Everything measured, per dataset: settings, per-class values, effects, verdicts."""

    def effect(e: Effect) -> dict[str, Any]:
        return {
            "title": e.quantity.title,
            "unit": e.quantity.unit,
            "effect_kind": e.quantity.effect,
            "target": list(e.quantity.target) if e.quantity.target else None,
            "source": e.quantity.source or None,
            "mean": e.mean,
            "sd": e.sd,
            "effect": {
                c: dict(zip(("value", "ci_low", "ci_high"), v, strict=True))
                for c, v in e.effect.items()
            },
            "in_target": e.in_target,
            "mci_between": e.mci_between,
            "meets": e.meets,
        }

    return {
        "datasets": [
            {
                **{k: getattr(c, k) for k in _PLAIN_FIELDS},
                "effects": {e.quantity.key: effect(e) for e in c.effects},
                "values": c.values,
                "missed": c.missed,
            }
            for c in checks
        ]
    }
