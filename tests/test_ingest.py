"""Ingest of real data: ADNI / plain-CSV / BIDS NIfTI trees and 2D class folders."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from srda.data.ingest import (
    NO_SPLIT,
    ImageRef,
    VolumeLayout,
    VolumeRef,
    check_class_folders,
    class_folder_counts,
    find_images,
    find_volumes,
    layouts,
    load_image,
    load_volume,
    register,
)
from srda.errors import InputError

SHAPE = (6, 7, 8)


def save_nii(path: Path, data: np.ndarray | None = None, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def esc(p: Path | str) -> str:
    return re.escape(str(p))


# ------------------------------------------------------------------------------------------
# ADNI download + collection CSV

ADNI_HEADER = (
    "Image Data ID,Subject,Group,Sex,Age,Visit,Modality,Description,Type,Acq Date,Format,"
    "Downloaded\n"
)


def adni_file(root: Path, ptid: str, series: str, image: str, desc: str = "MPRAGE") -> Path:
    name = f"ADNI_{ptid}_MR_{desc}_br_raw_20060418193713091_1_{series}_{image}.nii"
    return save_nii(root / "ADNI" / ptid / desc / "2006-04-18_08_20_30.0" / series / name)


def two_visits(root: Path, first: str, second: str) -> Path:
    """One subject's two scans (series S1 and S2) with the given image ids."""
    adni_file(root, "002_S_0295", "S1", first)
    adni_file(root, "002_S_0295", "S2", second)
    return root


@pytest.fixture
def adni(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "adni"
    adni_file(root, "002_S_0295", "S13408", "I13722")
    adni_file(root, "002_S_0295", "S21856", "I40966")
    # a CN subject under a folder whose name contains "AD": labels must come from the CSV only
    adni_file(root, "011_S_0002", "S9107", "I9999", desc="MPRAGE_ADNI_AD")
    adni_file(root, "005_S_0221", "S10", "I118")
    csv = write(
        tmp_path / "collection.csv",
        ADNI_HEADER
        + "I13722,002_S_0295,AD,M,85,1,MRI,MPRAGE,Original,4/18/2006,NiFTI,1/01/2024\n"
        + "I40966,002_S_0295,AD,M,86,2,MRI,MPRAGE,Original,5/18/2007,NiFTI,1/01/2024\n"
        + "I9999,011_S_0002,CN,M,74,1,MRI,MPRAGE,Original,8/26/2005,NiFTI,1/01/2024\n"
        + "I118,005_S_0221,LMCI,F,70,1,MRI,MPRAGE,Original,2/22/2006,NiFTI,1/01/2024\n"
        + "I777,099_S_9999,CN,F,70,1,MRI,MPRAGE,Original,2/22/2006,NiFTI,1/01/2024\n",
    )
    return root, csv


def test_adni_tree_with_collection_csv(adni: tuple[Path, Path], caplog) -> None:
    root, csv = adni
    with caplog.at_level(logging.WARNING):
        refs = find_volumes(root, csv, label_map={"LMCI": "MCI"})
    assert [(r.subject, r.image_id, r.label) for r in refs] == [
        ("002_S_0295", "I13722", "AD"),
        ("002_S_0295", "I40966", "AD"),
        ("005_S_0221", "I118", "MCI"),
        ("011_S_0002", "I9999", "CN"),
    ]
    assert all(isinstance(r, VolumeRef) and r.mask_path is None for r in refs)
    assert "099_S_9999" in caplog.text  # in the CSV, no volume: a warning only


def test_adni_per_image_labels_beat_subject_labels(tmp_path: Path) -> None:
    # A converter: MCI at the first visit, AD at the second; the image id picks the row.
    root = two_visits(tmp_path / "adni", "I1", "I2")
    csv = write(
        tmp_path / "c.csv",
        "Image Data ID,Subject,Group\nI1,002_S_0295,MCI\nI2,002_S_0295,AD\n",
    )
    assert [r.label for r in find_volumes(root, csv)] == ["MCI", "AD"]
    plain = write(tmp_path / "p.csv", "subject,label\n002_S_0295,MCI\n002_S_0295,AD\n")
    with pytest.raises(InputError, match="conflicting labels AD, MCI"):
        find_volumes(root, plain)


def test_adni_image_id_folder(tmp_path: Path) -> None:
    root = tmp_path / "adni"
    save_nii(root / "002_S_0295" / "I555" / "scan.nii.gz")
    csv = write(tmp_path / "c.csv", "Image Data ID,Subject,Group\nI555,002_S_0295,CN\n")
    (ref,) = find_volumes(root, csv)
    assert (ref.subject, ref.image_id, ref.label) == ("002_S_0295", "I555", "CN")


def test_adni_missing_subject_names_csv_and_file(adni: tuple[Path, Path]) -> None:
    root, _ = adni
    csv = write(root.parent / "short.csv", "Subject,Group\n002_S_0295,AD\n005_S_0221,MCI\n")
    with pytest.raises(InputError, match=f"^{esc(csv)}: labels CSV misses subject 011_S_0002") as e:
        find_volumes(root, csv)
    assert "I9999.nii" in str(e.value)


def test_unknown_label(adni: tuple[Path, Path]) -> None:
    root, csv = adni  # LMCI without label_map
    with pytest.raises(
        InputError,
        match=f"^{esc(csv)}: unknown label 'LMCI' for subject 005_S_0221.*"
        "expected one of CN, MCI, AD",
    ):
        find_volumes(root, csv)


# ------------------------------------------------------------------------------------------
# plain CSV


def test_plain_csv_boundaries_and_case(tmp_path: Path) -> None:
    root = tmp_path / "data"
    save_nii(root / "s01_T1.nii.gz")
    save_nii(root / "s010_T1.nii.gz")
    save_nii(root / "nested" / "deeper" / "s02.nii")
    save_nii(root / "P7" / "scan.nii.gz")  # subject = folder name
    csv = write(
        tmp_path / "labels.csv", "Participant_ID,DX\ns01,cn\ns010,Dementia\ns02,MCI\nP7,CN\n"
    )
    refs = find_volumes(root, csv, label_map={"Dementia": "AD"})
    assert [(r.subject, r.image_id, r.label) for r in refs] == [
        ("P7", "scan", "CN"),
        ("s01", "s01_T1", "CN"),
        ("s010", "s010_T1", "AD"),
        ("s02", "s02", "MCI"),
    ]


def test_plain_csv_semicolon_and_custom_classes(tmp_path: Path) -> None:
    root = tmp_path / "data"
    save_nii(root / "a-1.nii")
    save_nii(root / "b-2.nii")
    csv = write(tmp_path / "l.csv", "subject;group\na;HC\nb;PD\n")
    refs = find_volumes(root, csv, classes=["HC", "PD"])
    assert [r.label for r in refs] == ["HC", "PD"]


def test_ambiguous_file_name(tmp_path: Path) -> None:
    root = tmp_path / "data"
    f = save_nii(root / "a_b.nii")
    csv = write(tmp_path / "l.csv", "subject,label\na,CN\nb,AD\n")
    with pytest.raises(InputError, match=f"^{esc(f)}: path matches several subjects"):
        find_volumes(root, csv)


def test_duplicate_stems_get_unique_ids(tmp_path: Path) -> None:
    root = tmp_path / "data"
    save_nii(root / "s1" / "t1.nii.gz")
    save_nii(root / "s2" / "t1.nii.gz")
    csv = write(tmp_path / "l.csv", "subject,label\ns1,CN\ns2,AD\n")
    assert [r.image_id for r in find_volumes(root, csv)] == ["s1/t1", "s2/t1"]


def test_substring_is_not_a_subject(tmp_path: Path) -> None:
    root = tmp_path / "data"
    save_nii(root / "subject12.nii")  # contains "12" but not between boundaries
    csv = write(tmp_path / "l.csv", "subject,label\n12,CN\n")
    with pytest.raises(InputError, match="labels CSV misses subject subject12"):
        find_volumes(root, csv)


@pytest.mark.parametrize(
    "text",
    ["name,age\na,3\n", "subject,age\na,3\n", "", "label\nCN\n"],
    ids=["no-columns", "no-label", "empty", "no-subject"],
)
def test_csv_without_usable_columns(tmp_path: Path, text: str) -> None:
    root = tmp_path / "data"
    save_nii(root / "a.nii")
    csv = write(tmp_path / "l.csv", text)
    with pytest.raises(InputError, match=f"^{esc(csv)}: (no .* column|labels table is empty)"):
        find_volumes(root, csv)


def test_missing_paths_and_no_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope: dataset folder does not exist"):
        find_volumes(tmp_path / "nope", tmp_path / "l.csv")
    root = tmp_path / "data"
    save_nii(root / "a.nii")
    with pytest.raises(InputError, match="l.csv: labels CSV does not exist"):
        find_volumes(root, tmp_path / "l.csv")
    empty = tmp_path / "empty"
    write(empty / "readme.txt", "hi")
    csv = write(tmp_path / "l2.csv", "subject,label\na,CN\n")
    with pytest.raises(InputError, match=f"^{esc(empty)}: no NIfTI files"):
        find_volumes(empty, csv)


# ------------------------------------------------------------------------------------------
# BIDS


@pytest.fixture
def bids(tmp_path: Path) -> Path:
    root = tmp_path / "bids"
    write(root / "dataset_description.json", '{"Name": "t", "BIDSVersion": "1.8.0"}')
    write(root / "participants.tsv", "participant_id\tage\tgroup\nsub-01\t70\tCN\nsub-02\t71\tAD\n")
    for ses in ("ses-01", "ses-02"):
        save_nii(root / "sub-01" / ses / "anat" / f"sub-01_{ses}_T1w.nii.gz")
        save_nii(root / "sub-01" / ses / "pet" / f"sub-01_{ses}_trc-FDG_pet.nii.gz")
    save_nii(root / "sub-02" / "ses-01" / "anat" / "sub-02_ses-01_T1w.nii.gz")
    save_nii(root / "sub-02" / "ses-01" / "anat" / "sub-02_ses-01_T2w.nii.gz")
    save_nii(root / "sub-02" / "ses-01" / "pet" / "sub-02_ses-01_trc-FDG_pet.nii.gz")
    # derivatives would otherwise add more images (and a 4D one that fails)
    save_nii(root / "derivatives" / "x" / "sub-01" / "sub-01_T1w.nii.gz", np.zeros((4, 4, 4, 3)))
    return root


def test_bids_participants_tsv_and_sessions(bids: Path) -> None:
    refs = find_volumes(bids, modality="mri")
    assert [(r.subject, r.image_id, r.label) for r in refs] == [
        ("sub-01", "sub-01_ses-01_T1w", "CN"),
        ("sub-01", "sub-01_ses-02_T1w", "CN"),
        ("sub-02", "sub-02_ses-01_T1w", "AD"),
    ]
    pet = find_volumes(bids, modality="pet")
    assert [r.image_id for r in pet] == [
        "sub-01_ses-01_trc-FDG_pet",
        "sub-01_ses-02_trc-FDG_pet",
        "sub-02_ses-01_trc-FDG_pet",
    ]


def test_bids_plain_csv_without_prefix(bids: Path, tmp_path: Path) -> None:
    csv = write(tmp_path / "l.csv", "subject,diagnosis\n01,MCI\n02,AD\n")
    refs = find_volumes(bids, csv, modality="mri")
    assert [(r.subject, r.label) for r in refs] == [("01", "MCI"), ("01", "MCI"), ("02", "AD")]


def test_bids_label_column(bids: Path) -> None:
    write(bids / "participants.tsv", "participant_id\tcohort\nsub-01\tCN\nsub-02\tn/a\n")
    with pytest.raises(InputError, match="participants.tsv: no label column"):
        find_volumes(bids, modality="mri")
    with pytest.raises(InputError, match="no label for subject sub-02"):
        find_volumes(bids, label_column="Cohort", modality="mri")
    with pytest.raises(InputError, match="no column 'grp'"):
        find_volumes(bids, label_column="grp", modality="mri")


# ------------------------------------------------------------------------------------------
# loading, orientation, damaged files


def one_ref(path: Path, mask: Path | None = None) -> VolumeRef:
    return VolumeRef(subject="s", image_id="i", label="CN", path=path, mask_path=mask)


@pytest.mark.parametrize(
    "affine",
    [
        np.diag([-1.0, 1.0, 1.0, 1.0]) + np.array([[0, 0, 0, 20], [0, 0, 0, -5], [0] * 4, [0] * 4]),
        # PSR: i -> posterior, j -> superior, k -> right, with zooms 1, 2, 3
        np.array([[0, 0, 3.0, -10], [-1.0, 0, 0, 30], [0, 2.0, 0, -40], [0, 0, 0, 1]]),
    ],
    ids=["LAS", "PSR"],
)
def test_reorient_to_ras_keeps_world_coordinates(tmp_path: Path, affine: np.ndarray) -> None:
    data = np.zeros(SHAPE, dtype=np.float32)
    marked = (1, 5, 2)
    data[marked] = 7.0
    f = save_nii(tmp_path / "v.nii.gz", data, affine)
    vol = load_volume(one_ref(f))
    assert vol.data.dtype == np.float32 and vol.data.ndim == 3
    (new_idx,) = np.argwhere(vol.data == 7.0)
    world_before = affine @ np.array([*marked, 1.0])
    world_after = vol.affine @ np.array([*new_idx, 1.0])
    np.testing.assert_allclose(world_after, world_before)
    # RAS+: axis 0 runs to the right, axis 1 to anterior, axis 2 to superior
    assert np.all(np.diag(vol.affine)[:3] > 0)
    assert nib.aff2axcodes(vol.affine) == ("R", "A", "S")
    axis_of = np.abs(vol.affine[:3, :3]).argmax(0)  # world axis each voxel axis runs along
    assert list(axis_of) == [0, 1, 2]
    assert vol.zooms == tuple(float(np.abs(vol.affine[i, i])) for i in range(3))


def test_psr_zooms_are_permuted(tmp_path: Path) -> None:
    affine = np.array([[0, 0, 3.0, 0], [-1.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1]])
    f = save_nii(tmp_path / "v.nii", np.zeros(SHAPE, np.float32), affine)
    vol = load_volume(one_ref(f))
    assert vol.zooms == (3.0, 1.0, 2.0)
    assert vol.data.shape == (SHAPE[2], SHAPE[0], SHAPE[1])


def test_singleton_fourth_axis_and_scaling(tmp_path: Path) -> None:
    raw = np.arange(np.prod(SHAPE), dtype=np.int16).reshape(*SHAPE, 1)
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(2.0, 10.0)
    f = tmp_path / "v.nii.gz"
    nib.save(img, str(f))
    vol = load_volume(one_ref(f))
    assert vol.data.shape == SHAPE and vol.data.dtype == np.float32
    np.testing.assert_allclose(vol.data, raw[..., 0] * 2.0 + 10.0)
    assert vol.zooms == (1.0, 1.0, 1.0) and vol.mask is None


def test_four_d_with_frames(tmp_path: Path) -> None:
    f = save_nii(tmp_path / "a.nii.gz", np.zeros((*SHAPE, 5), np.float32))
    csv = write(tmp_path / "l.csv", "subject,label\na,CN\n")
    with pytest.raises(InputError, match=f"^{esc(f)}: 4D volume with 5 frames; give one frame"):
        find_volumes(tmp_path, csv)
    with pytest.raises(InputError, match="4D volume with 5 frames"):
        load_volume(one_ref(f))


@pytest.mark.parametrize("shape", [(6, 7), (6,), (6, 7, 1)], ids=["2D", "1D", "flat3D"])
def test_low_dimensional(tmp_path: Path, shape: tuple[int, ...]) -> None:
    f = save_nii(tmp_path / "a.nii", np.zeros(shape, np.float32))
    with pytest.raises(InputError, match=f"^{esc(f)}: .*(2D|1D).*expected a 3D volume"):
        load_volume(one_ref(f))


def test_truncated_gz(tmp_path: Path) -> None:
    f = save_nii(tmp_path / "a.nii.gz", np.random.default_rng(0).random((20, 20, 20)))
    blob = f.read_bytes()
    f.write_bytes(blob[: len(blob) // 2])
    csv = write(tmp_path / "l.csv", "subject,label\na,CN\n")
    (ref,) = find_volumes(tmp_path, csv)  # the header is intact; the data fails on load
    with pytest.raises(InputError, match=f"^{esc(f)}: cannot read the voxel data.*truncated"):
        load_volume(ref)


def test_truncated_uncompressed(tmp_path: Path) -> None:
    f = save_nii(tmp_path / "a.nii")
    f.write_bytes(f.read_bytes()[:-100])
    csv = write(tmp_path / "l.csv", "subject,label\na,CN\n")
    with pytest.raises(InputError, match=f"^{esc(f)}: volume is truncated"):
        find_volumes(tmp_path, csv)


@pytest.mark.parametrize("name", ["a.nii", "a.nii.gz"])
def test_random_bytes(tmp_path: Path, name: str) -> None:
    f = tmp_path / name
    f.write_bytes(np.random.default_rng(1).bytes(4000))
    csv = write(tmp_path / "l.csv", "subject,label\na,CN\n")
    with pytest.raises(InputError, match=f"^{esc(f)}: cannot read volume as NIfTI"):
        find_volumes(tmp_path, csv)
    with pytest.raises(InputError, match=f"^{esc(f)}: cannot read volume as NIfTI"):
        load_volume(one_ref(f))


def test_nan_and_inf(tmp_path: Path) -> None:
    data = np.ones(SHAPE, np.float32)
    data[0, 0, :3] = np.nan
    f = save_nii(tmp_path / "a.nii.gz", data)
    with pytest.raises(InputError, match=f"^{esc(f)}: volume contains 3 NaN voxels"):
        load_volume(one_ref(f))
    data[0, 0, :3] = np.inf
    save_nii(f, data)
    with pytest.raises(InputError, match="contains 3 infinite voxels"):
        load_volume(one_ref(f))


# ------------------------------------------------------------------------------------------
# NIfTI masks


def test_masks_matched_and_reoriented(tmp_path: Path) -> None:
    root = tmp_path / "data"
    las = np.diag([-1.0, 1.0, 1.0, 1.0])
    save_nii(root / "s1" / "t1.nii.gz", affine=las)
    save_nii(root / "s2_T1.nii.gz")
    masks = tmp_path / "masks"
    m1 = np.zeros(SHAPE, np.int16)
    m1[0, 1, 2] = 3
    save_nii(masks / "s1" / "t1.nii.gz", m1, las)  # same relative path
    save_nii(masks / "s2_T1_mask.nii.gz", np.zeros(SHAPE, np.uint8))  # stem + suffix
    csv = write(tmp_path / "l.csv", "subject,label\ns1,CN\ns2,AD\n")
    refs = find_volumes(root, csv, masks=masks)
    assert [r.mask_path.name for r in refs] == ["t1.nii.gz", "s2_T1_mask.nii.gz"]
    vol = load_volume(refs[0])
    assert vol.mask.dtype == np.int16 and vol.mask.shape == vol.data.shape
    assert tuple(np.argwhere(vol.mask == 3)[0]) == (SHAPE[0] - 1, 1, 2)  # flipped with the image


def test_mask_by_subject_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "data"
    save_nii(root / "s1.nii")
    masks = tmp_path / "masks"
    bad = save_nii(masks / "roi_s1.nii", np.zeros((5, 5, 5), np.int16))
    csv = write(tmp_path / "l.csv", "subject,label\ns1,CN\n")
    with pytest.raises(InputError, match=f"^{esc(bad)}: mask shape .* does not match image shape"):
        find_volumes(root, csv, masks=masks)
    save_nii(bad, np.full(SHAPE, 0.5, np.float32))
    (ref,) = find_volumes(root, csv, masks=masks)
    assert ref.mask_path == bad
    with pytest.raises(InputError, match="mask has non-integer values"):
        load_volume(ref)
    bad.unlink()
    save_nii(masks / "other.nii", np.zeros(SHAPE, np.int16))
    with pytest.raises(InputError, match=f"^{esc(masks)}: no mask for image"):
        find_volumes(root, csv, masks=masks)


# ------------------------------------------------------------------------------------------
# 2D class folders


def save_png(path: Path, size: tuple[int, int] = (8, 6), mode: str = "L", value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)
    return path


KAGGLE4 = ["NonDemented", "VeryMildDemented", "MildDemented", "ModerateDemented"]


def test_class_folders_with_splits(tmp_path: Path) -> None:
    root = tmp_path / "Alzheimer_s Dataset"
    for split in ("train", "test"):
        for cls in ("Very_Mild_Demented", "Non_Demented", "Moderate_Demented", "Mild_Demented"):
            save_png(root / split / cls / f"{cls[:3].lower()}_{split}_1.jpg")
    save_png(root / "train" / "Mild_Demented" / "same.png")
    save_png(root / "test" / "Mild_Demented" / "same.png")
    save_png(tmp_path / "__MACOSX" / "Alzheimer_s Dataset" / "train" / "._x.png")  # zip debris
    refs, classes = find_images(tmp_path)  # steps into the single wrapping folder
    assert classes == KAGGLE4
    assert len(refs) == 10 and all(isinstance(r, ImageRef) for r in refs)
    assert {r.source_split for r in refs} == {"train", "test"}
    assert {r.label for r in refs} == set(KAGGLE4)
    ids = [r.image_id for r in refs]
    assert len(set(ids)) == len(ids)
    assert "train/Mild_Demented/same" in ids and "test/Mild_Demented/same" in ids
    assert all(r.subject == r.image_id for r in refs)  # each image its own subject
    assert refs == sorted(refs, key=lambda r: (r.subject, r.image_id))


def test_three_classes_flat_and_rgb_jpeg(tmp_path: Path) -> None:
    for cls in ("Mild Demented", "Non Demented", "Very Mild Demented"):
        save_png(tmp_path / cls / "a.png")
    rgb = tmp_path / "Mild Demented" / "rgb.jpg"
    Image.new("RGB", (10, 4), (200, 100, 50)).save(rgb, quality=100)
    refs, classes = find_images(tmp_path)
    assert classes == ["NonDemented", "VeryMildDemented", "MildDemented"]
    assert {r.source_split for r in refs} == {NO_SPLIT}
    (ref,) = [r for r in refs if r.path == rgb]
    img, mask = load_image(ref)
    assert img.shape == (4, 10) and img.dtype == np.float32 and mask is None
    expected = (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255
    assert abs(float(img.mean()) - expected) < 3 / 255


def test_unknown_classes_alphabetical_and_16bit(tmp_path: Path) -> None:
    save_png(tmp_path / "zeta" / "a.png")
    f = tmp_path / "Alpha" / "b.png"
    f.parent.mkdir()
    Image.fromarray(np.full((5, 6), 65535, np.uint16)).save(f)
    refs, classes = find_images(tmp_path)
    assert classes == ["Alpha", "zeta"]
    img, _ = load_image(next(r for r in refs if r.path == f))
    assert img.shape == (5, 6) and float(img.max()) == 1.0


def test_image_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope: image folder does not exist"):
        find_images(tmp_path / "nope")
    root = tmp_path / "d"
    save_png(root / "a.png")
    with pytest.raises(InputError, match=f"^{esc(root)}: no class folders"):
        find_images(root)
    save_png(root / "CN" / "a.png")
    (root / "AD").mkdir()
    with pytest.raises(InputError, match=f"^{esc(root / 'AD')}: class folder has no images"):
        find_images(root)
    bad = write(root / "AD" / "broken.png", "not an image")
    with pytest.raises(InputError, match=f"^{esc(bad)}: cannot read image"):
        find_images(root)
    bad.unlink()
    thin = save_png(root / "AD" / "thin.png", size=(1, 30))
    with pytest.raises(InputError, match=f"^{esc(thin)}: image is 1x30 pixels"):
        find_images(root)
    thin.unlink()
    save_png(root / "AD" / "ok.png")
    refs, classes = find_images(root)
    assert classes == ["CN", "AD"]
    # truncated after discovery: the header was fine, decoding fails
    f = refs[0].path
    Image.new("L", (64, 64), 3).save(f)
    f.write_bytes(f.read_bytes()[:60])
    with pytest.raises(InputError, match=f"^{esc(f)}: cannot read image"):
        load_image(refs[0])


def test_one_class_and_mixed_levels(tmp_path: Path) -> None:
    save_png(tmp_path / "a" / "only" / "x.png")
    save_png(tmp_path / "a" / "other" / "x.png")
    save_png(tmp_path / "a" / "train" / "c" / "x.png")
    with pytest.raises(InputError, match="mixes split folders"):
        find_images(tmp_path / "a")
    save_png(tmp_path / "lone" / "CN" / "x.png")
    with pytest.raises(InputError, match=f"^{esc(tmp_path / 'lone')}: found only one class folder"):
        find_images(tmp_path / "lone")
    save_png(tmp_path / "b" / "train" / "c" / "x.png")
    save_png(tmp_path / "b" / "test" / "c" / "y.png")
    with pytest.raises(InputError, match="only one class folder"):
        find_images(tmp_path / "b")


def test_image_masks_and_subjects(tmp_path: Path) -> None:
    root = tmp_path / "d"
    a = save_png(root / "CN" / "img1.png")
    save_png(root / "AD" / "img2.jpg")
    masks = tmp_path / "masks"
    m = Image.new("P", (8, 6), 0)  # a palette label map: the indices are the labels
    m.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    m.putpixel((2, 1), 4)
    masks.mkdir()
    m.save(masks / "img1.png")
    save_png(masks / "img2_mask.png", value=1)
    subj = write(tmp_path / "subjects.csv", "filename,patient_id\nimg1.png,P1\nimg2,P1\n")
    refs, _ = find_images(root, masks=masks, subjects=subj)
    assert [(r.subject, r.image_id) for r in refs] == [("P1", "img1"), ("P1", "img2")]
    img, mask = load_image(next(r for r in refs if r.path == a))
    assert mask.dtype == np.int16 and mask.shape == img.shape and mask[1, 2] == 4
    save_png(masks / "img2_mask.png", size=(9, 6))
    with pytest.raises(InputError, match="mask size 9x6 does not match image size 8x6"):
        find_images(root, masks=masks)
    os.remove(masks / "img2_mask.png")
    with pytest.raises(InputError, match=f"^{esc(masks)}: no mask for image"):
        find_images(root, masks=masks)
    short = write(tmp_path / "s2.csv", "image,subject\nimg1.png,P1\n")
    with pytest.raises(InputError, match=f"^{esc(short)}: subjects CSV misses image AD/img2.jpg"):
        find_images(root, subjects=short)


def test_class_folders_are_counted_from_names_alone(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for cls, n in (("MildDemented", 2), ("NonDemented", 3)):
        for i in range(n):
            (root / "train" / cls).mkdir(parents=True, exist_ok=True)
            (root / "train" / cls / f"{cls}{i}.png").write_bytes(b"not opened")
    (root / "test" / "NonDemented").mkdir(parents=True)
    (root / "test" / "NonDemented" / "t.jpg").write_bytes(b"")
    assert class_folder_counts(root) == {"NonDemented": 4, "MildDemented": 2}
    subjects = write(
        tmp_path / "subjects.csv",
        "image,subject\n"
        + "".join(f"MildDemented{i}.png,m\n" for i in range(2))
        + "".join(f"NonDemented{i}.png,n{i % 2}\n" for i in range(3))
        + "t.jpg,n0\n",
    )
    assert class_folder_counts(root, subjects=subjects) == {"NonDemented": 2, "MildDemented": 1}
    assert class_folder_counts(root, subjects=subjects, unit="slices") == {
        "NonDemented": 4,
        "MildDemented": 2,
    }


@pytest.fixture
def folder_settings(base_config, tmp_path):
    """Job settings of a class-folder dataset 'mine' with ``counts`` images per class."""
    from srda.config import dataset_job_settings, resolve

    def make(counts: dict[str, int], **entry):
        root = tmp_path / "mine"
        for cls, n in counts.items():
            (root / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                save_png(root / cls / f"{cls}{i}.png")
        config = {**base_config, "preset": "smoke", "run_datasets": ["mine"]}
        config["datasets"] = {"mine": {"source": "folders", "path": str(root)} | entry}
        return dataset_job_settings(resolve(config), "mine"), root

    return make


def test_class_folders_too_few_for_the_split_are_refused_at_the_start(folder_settings) -> None:
    settings, root = folder_settings({"NonDemented": 1, "VeryMildDemented": 2, "MildDemented": 1})
    with pytest.raises(InputError) as err:
        check_class_folders(settings)
    assert err.value.where == str(root)
    assert err.value.problem == (
        "dataset mine: too few subjects per class for a split by subject into train, val and "
        "test (NonDemented 1 subject, VeryMildDemented 2 subjects, MildDemented 1 subject; "
        "each class needs at least 3, one per split); the val and test splits would be empty "
        "(images in the class folders)"
    )
    settings["split"] = "slices"  # the same counts, now as slices: still too few
    with pytest.raises(InputError, match="too few slices per class"):
        check_class_folders(settings)
    enough, _ = folder_settings({"NonDemented": 3, "VeryMildDemented": 3, "MildDemented": 3})
    check_class_folders(enough)


def test_a_subjects_csv_that_groups_the_images_is_what_the_start_counts(
    folder_settings, tmp_path: Path
) -> None:
    classes = {"NonDemented": 3, "MildDemented": 3}
    grouping = "".join(f"{c}{i}.png,{c[:3]}{i % 2}\n" for c in classes for i in range(3))
    subjects = write(tmp_path / "subjects.csv", "image,subject\n" + grouping)
    settings, _ = folder_settings(classes, subjects=str(subjects))
    with pytest.raises(InputError, match="NonDemented 2 subjects, MildDemented 2 subjects") as err:
        check_class_folders(settings)
    assert err.value.where == str(subjects)
    settings["split"] = "slices"  # six images per class are enough slices
    check_class_folders(settings)


def test_the_start_check_leaves_other_sources_alone(folder_settings) -> None:
    settings, _ = folder_settings({"CN": 1, "AD": 1})
    check_class_folders({**settings, "source": "nifti"})
    check_class_folders({**settings, "source": "synthetic"})
    with pytest.raises(InputError):
        check_class_folders(settings)


def test_adnimerge_style_table(tmp_path: Path) -> None:
    # ADNIMERGE: PTID, DX per visit ("Dementia"), IMAGEUID as bare digits
    root = two_visits(tmp_path / "adni", "I101", "I102")
    csv = write(
        tmp_path / "ADNIMERGE.csv",
        "RID,PTID,VISCODE,DX_bl,DX,IMAGEUID\n"
        "295,002_S_0295,bl,LMCI,MCI,101\n295,002_S_0295,m12,LMCI,Dementia,102\n"
        "295,002_S_0295,m24,LMCI,,\n",
    )
    refs = find_volumes(root, csv, label_map={"Dementia": "AD"})
    assert [(r.image_id, r.label) for r in refs] == [("I101", "MCI"), ("I102", "AD")]
    refs = find_volumes(root, csv, label_map={"LMCI": "MCI"}, label_column="DX_bl")
    assert [r.label for r in refs] == ["MCI", "MCI"]


def test_same_stem_two_extensions(tmp_path: Path) -> None:
    root = tmp_path / "data"
    save_nii(root / "s1.nii")
    save_nii(root / "s1.nii.gz")
    csv = write(tmp_path / "l.csv", "subject,label\ns1,CN\n")
    assert [r.image_id for r in find_volumes(root, csv)] == ["s1.nii", "s1.nii.gz"]


def test_sub_folders_without_bids_names(tmp_path: Path) -> None:
    root = tmp_path / "data"
    save_nii(root / "sub-01" / "scan.nii")
    csv = write(tmp_path / "l.csv", "participant_id,group\nsub-01,AD\n")
    (ref,) = find_volumes(root, csv)
    assert (ref.subject, ref.label) == ("sub-01", "AD")


def test_bids_masks_by_entities(bids: Path, tmp_path: Path) -> None:
    masks = tmp_path / "roi"
    for sub, ses in (("01", "01"), ("01", "02"), ("02", "01")):
        name = f"sub-{sub}_ses-{ses}_space-T1w_desc-hippo_mask.nii.gz"
        save_nii(masks / f"sub-{sub}" / name, np.zeros(SHAPE, np.int16))
    refs = find_volumes(bids, masks=masks, modality="mri")
    assert [r.mask_path.name[:13] for r in refs] == [
        "sub-01_ses-01",
        "sub-01_ses-02",
        "sub-02_ses-01",
    ]


# ------------------------------------------------------------------------------------------
# input layout registry


def test_layouts_are_discovered_and_asked_in_rank_order() -> None:
    assert [lay.name for lay in layouts.layouts("volumes")] == ["bids", "tree"]
    assert [lay.name for lay in layouts.layouts("images")] == ["class_folders"]


def test_a_named_layout_overrides_recognition(bids: Path) -> None:
    # as a plain tree the BIDS folder's derivatives are read too, and their 4D file fails
    with pytest.raises(InputError, match="4D volume with 3 frames"):
        find_volumes(bids, bids / "participants.tsv", layout="tree")
    with pytest.raises(InputError, match=r"unknown volumes layout 'bidz'.*bids, tree"):
        find_volumes(bids, layout="bidz")
    with pytest.raises(InputError, match="unknown images layout 'bids'; known layouts: class"):
        find_images(bids, layout="bids")


def test_a_registered_layout_is_used_for_the_folders_it_recognises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a layout that takes only the scans listed in scans.txt, registered as a new module would
    monkeypatch.setattr(layouts, "_LAYOUTS", dict(layouts._LAYOUTS))
    root = tmp_path / "listed"
    for name in ("s1.nii", "s2.nii", "junk.nii"):
        save_nii(root / name)
    write(root / "scans.txt", "s1.nii\ns2.nii\n")

    def listed(folder: Path, skip: list[Path], modality: str | None) -> layouts.VolumeFiles:
        names = (folder / "scans.txt").read_text().split()
        return layouts.VolumeFiles([folder / n for n in names], folder / "labels.csv")

    write(root / "labels.csv", "subject,group\ns1,CN\ns2,AD\n")
    register(VolumeLayout("listed", lambda folder: (folder / "scans.txt").is_file(), listed, 20))
    refs = find_volumes(root)  # labels from the layout, junk.nii left out
    assert [(r.subject, r.label) for r in refs] == [("s1", "CN"), ("s2", "AD")]
    assert [lay.name for lay in layouts.layouts("volumes")][0] == "listed"
    with pytest.raises(ValueError, match="registered twice"):
        register(VolumeLayout("listed", lambda folder: False, listed))
    (root / "scans.txt").unlink()
    with pytest.raises(InputError, match="misses subject junk"):  # back to the tree
        find_volumes(root, root / "labels.csv")
