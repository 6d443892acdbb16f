"""The embedded synthetic cohort: determinism, geometry, class effects, 2D layout, atomic writes.

Small cohorts at 3 mm keep the file fast; the template is loaded once per test process.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from srda.data import synthetic as syn
from srda.errors import InputError

VOXEL = 3.0


@pytest.fixture(scope="module")
def mri_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mri") / "cohort"
    syn.synthesize_volumes(out, "mri", 6, seed=5, voxel_mm=VOXEL)
    return out


def _data(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def _paired(
    modality: str, index: int, severity: float = 1.0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The same subject (same random draws) generated as CN and as AD."""
    out = []
    for label in (0, 2):
        subj = syn.draw_subject(3, modality, index, label, severity)
        vol, mask, _ = syn.make_volume(subj, modality, VOXEL, seed=3)
        out.append((vol, mask))
    return out[0], out[1]


def test_same_seed_same_subjects_whatever_the_cohort_size(mri_cohort: Path, tmp_path: Path):
    small = tmp_path / "small"
    syn.synthesize_volumes(small, "mri", 3, seed=5, voxel_mm=VOXEL)
    for k in (1, 2, 3):
        name = f"sub-{k:04d}.nii.gz"
        np.testing.assert_array_equal(
            _data(small / "volumes" / name), _data(mri_cohort / "volumes" / name)
        )
        np.testing.assert_array_equal(
            _data(small / "masks" / name), _data(mri_cohort / "masks" / name)
        )
    other = tmp_path / "other"
    syn.synthesize_volumes(other, "mri", 1, seed=6, voxel_mm=VOXEL)
    assert not np.array_equal(
        _data(other / "volumes" / "sub-0001.nii.gz"), _data(small / "volumes" / "sub-0001.nii.gz")
    )


def test_volume_geometry_is_ras_mni(mri_cohort: Path):
    img = nib.load(mri_cohort / "volumes" / "sub-0001.nii.gz")
    mask = nib.load(mri_cohort / "masks" / "sub-0001.nii.gz")
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    assert img.header.get_zooms()[:3] == pytest.approx((VOXEL,) * 3)
    assert img.get_data_dtype() == np.float32
    assert mask.get_data_dtype() == np.uint8
    np.testing.assert_allclose(mask.affine, img.affine)
    assert img.shape == syn.volume_grid("mri", VOXEL).shape == (60, 72, 60)
    # The hippocampi straddle the midline near MNI (0, -20, -12): the origin is MNI-consistent.
    ijk = np.argwhere(np.asarray(mask.dataobj) == syn.ROI_HIPPOCAMPUS)
    centre = nib.affines.apply_affine(img.affine, ijk.mean(0))
    assert np.abs(centre - np.array([0.0, -22.0, -12.0])).max() < 10.0
    data = np.asarray(img.dataobj)
    assert data.max() > 500  # T1-like arbitrary units, not pre-normalised to [0, 1]
    assert data.min() >= 0


def test_pet_grid_follows_adni_standard():
    assert syn.volume_grid("pet", 1.5).shape == (160, 160, 96)
    assert syn.volume_grid("pet", 3.0).shape == (80, 80, 48)
    aff = syn.volume_grid("pet", 1.5).affine
    np.testing.assert_allclose(np.diag(aff)[:3], 1.5)


def test_labels_balanced_round_robin(mri_cohort: Path):
    labels = pd.read_csv(mri_cohort / "labels.csv")
    assert list(labels.columns) == ["subject", "label"]
    assert labels["subject"].tolist() == [f"sub-{k:04d}" for k in range(1, 7)]
    assert labels["label"].tolist() == list(syn.CLASSES_3D) * 2
    assert sorted(p.name for p in (mri_cohort / "volumes").iterdir()) == [
        f"sub-{k:04d}.nii.gz" for k in range(1, 7)
    ]


def test_ad_shrinks_hippocampus_and_grows_ventricles():
    hip, vent = [], []
    for index in (1, 2, 3):
        (_, cn), (_, ad) = _paired("mri", index)
        hip.append((ad == syn.ROI_HIPPOCAMPUS).sum() / (cn == syn.ROI_HIPPOCAMPUS).sum())
        vent.append((ad == syn.ROI_VENTRICLES).sum() / (cn == syn.ROI_VENTRICLES).sum())
    assert np.mean(hip) < 0.9
    assert np.mean(vent) > 1.25


def test_severity_zero_makes_classes_identical():
    (cn_vol, cn_mask), (ad_vol, ad_mask) = _paired("mri", 2, severity=0.0)
    np.testing.assert_array_equal(cn_mask, ad_mask)
    np.testing.assert_array_equal(cn_vol, ad_vol)
    (cn_vol, _), (ad_vol, _) = _paired("pet", 2, severity=0.0)
    np.testing.assert_array_equal(cn_vol, ad_vol)


def test_severity_knob_scales_the_effect():
    weak = syn.draw_subject(0, "mri", 3, 2, 0.5).amplitudes()
    full = syn.draw_subject(0, "mri", 3, 2, 1.0).amplitudes()
    base = syn.draw_subject(0, "mri", 3, 0, 1.0).amplitudes()
    for key in full:
        assert full[key] - base[key] == pytest.approx(2 * (weak[key] - base[key]))


def test_marker_weights_scale_each_class_effect_alone():
    base = syn.draw_subject(0, "mri", 3, 0, 1.0).amplitudes()
    plain = syn.draw_subject(0, "mri", 3, 2, 1.0).amplitudes()
    markers = {"ventricles": 0.25, "hippocampus": 3.0}
    weighted = syn.draw_subject(0, "mri", 3, 2, 1.0, markers).amplitudes()
    expected = {
        "ventricles": 0.25,
        "hippocampus": 3.0,
        "cortex": 1.0,
        "pet_drop": 1.0,
        "pet_grey": 1,
    }
    for key, weight in expected.items():
        effect = plain[key] - base[key]
        assert weighted[key] - base[key] == pytest.approx(weight * effect)
    # CN carries no class effect: weights leave it alone (only ageing remains)
    assert syn.draw_subject(0, "mri", 3, 0, 1.0, markers).amplitudes() == base
    with pytest.raises(InputError, match="unknown marker 'amygdala'"):
        syn.draw_subject(0, "mri", 3, 2, 1.0, {"amygdala": 1.0})
    with pytest.raises(InputError, match="'cortex' must be"):
        syn.check_markers({"cortex": -1.0})


def test_pet_resolution_range_maps_the_same_draw():
    wide = syn.draw_subject(0, "pet", 4, 1, 1.0).pet_fwhm_mm
    sharp = syn.draw_subject(0, "pet", 4, 1, 1.0, pet_fwhm_mm=(3.0, 4.0)).pet_fwhm_mm
    assert 6.0 <= wide <= 8.0 and 3.0 <= sharp <= 4.0
    assert (wide - 6.0) / 2.0 == pytest.approx(sharp - 3.0)  # one uniform draw, two ranges
    with pytest.raises(InputError, match="pet_fwhm_mm"):
        syn.check_fwhm((5.0, 4.0))


def test_pet_regional_field_varies_metabolism_whatever_the_class():
    plain = syn.draw_subject(0, "pet", 5, 2, 1.0)
    varied = syn.draw_subject(0, "pet", 5, 2, 1.0, pet_regional_sd=0.2)
    # its own random stream: every other draw stays, and the class does not enter it
    assert np.array_equal(plain.modes, varied.modes) and plain.noise == varied.noise
    assert np.array_equal(
        varied.regional, syn.draw_subject(0, "pet", 5, 0, 1.0, None, None, 0.2).regional
    )
    assert not np.any(plain.regional)
    assert not np.any(syn.draw_subject(0, "mri", 5, 2, 1.0, pet_regional_sd=0.2).regional)
    vol_plain, _, _ = syn.make_volume(plain, "pet", VOXEL, seed=0)
    vol_varied, _, _ = syn.make_volume(varied, "pet", VOXEL, seed=0)
    brain = vol_plain > 0.3 * vol_plain.max()
    log_ratio = np.log(vol_varied[brain] / vol_plain[brain])
    assert 0.1 < log_ratio.std() < 0.3  # about the knob, over the brain rather than the box
    # smooth: neighbouring voxels scale alike, unlike the noise
    assert np.corrcoef(log_ratio[:-1], log_ratio[1:])[0, 1] > 0.9
    with pytest.raises(InputError, match="pet_regional_sd"):
        syn.check_regional_sd(1.5)


def test_pet_hypometabolism_in_ad_regions(tmp_path: Path):
    ratios = []
    for index in (1, 2):
        (cn_vol, cn_mask), (ad_vol, _) = _paired("pet", index)
        region = cn_mask == syn.ROI_AD_CORTEX
        ratios.append(ad_vol[region].mean() / cn_vol[region].mean())
    assert np.mean(ratios) < 0.85
    out = tmp_path / "pet"
    frame = syn.synthesize_volumes(out, "pet", 3, seed=1, voxel_mm=VOXEL)
    assert frame["label"].tolist() == list(syn.CLASSES_3D)
    assert nib.load(out / "volumes" / "sub-0001.nii.gz").shape == (80, 80, 48)


def test_slices_layout(tmp_path: Path):
    out = tmp_path / "slices"
    frame = syn.synthesize_slices(out, 6, seed=2)
    assert list(frame.columns) == ["image", "label"]
    assert frame["label"].tolist() == list(syn.CLASSES_2D) * 2
    for cls in syn.CLASSES_2D:
        assert len(list((out / "images" / cls).glob("img-*.png"))) == 2
    for rel in frame["image"]:
        with Image.open(out / rel) as im:
            assert im.size == (176, 208) and im.mode == "L"
            pixels = np.asarray(im)
        assert pixels.max() > 150 and pixels[0, 0] == 0  # bright brain on a dark background
        with Image.open(out / "masks" / Path(rel).name) as m:
            assert m.size == (176, 208)
            assert set(np.unique(np.asarray(m))) <= {0, 1, 2, 3}
    again = syn.synthesize_slices(tmp_path / "again", 3, seed=2)
    for rel in again["image"]:
        np.testing.assert_array_equal(
            np.asarray(Image.open(out / rel)), np.asarray(Image.open(tmp_path / "again" / rel))
        )


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "cohort"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    syn.synthesize_slices(out, 3)
    assert not (out / "stale.txt").exists()  # an existing folder is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort"]

    calls = {"n": 0}
    real = syn.make_slice

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("interrupted")
        return real(*args, **kwargs)

    monkeypatch.setattr(syn, "make_slice", failing)
    with pytest.raises(RuntimeError):
        syn.synthesize_slices(out, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort"]  # no temporary left
    assert len(pd.read_csv(out / "labels.csv")) == 3  # the previous cohort is intact


def test_bad_input_is_named():
    with pytest.raises(InputError, match="modality"):
        syn.synthesize_volumes(Path("/nonexistent/x"), "ct", 3)
    with pytest.raises(InputError, match="severity"):
        syn.synthesize_slices(Path("/nonexistent/x"), 3, severity=-1.0)
