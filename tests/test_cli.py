"""Bad input through the CLI: one line naming the file and the problem, exit 2, no outputs."""

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from srda.cli import main
from srda.config import dataset_job_settings, resolve


@pytest.fixture
def nifti_settings(base_config, tmp_path):
    def make(path, labels, **extra):
        config = {**base_config, "preset": "smoke"}
        config["datasets"] = {
            "mine": {"source": "nifti", "path": str(path), "labels": str(labels), **extra}
        }
        return dataset_job_settings(resolve(config), "mine")

    return make


def _volume(path: Path, shape=(24, 28, 20), value=None):
    rng = np.random.default_rng(0)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape[:3]], indexing="ij")
    data = ((x**2 + y**2 + z**2) < 0.8).astype(np.float32) * 100 + rng.random(shape[:3])
    if len(shape) == 4:
        data = np.repeat(data[..., None], shape[3], axis=3)
    if value is not None:
        data.flat[0] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 1.5, 1.0])), path)


def _cohort(root: Path, n=9):
    for i in range(n):
        _volume(root / "vols" / f"sub-{i:02d}.nii.gz")
    labels = pd.DataFrame(
        {"subject": [f"sub-{i:02d}" for i in range(n)], "label": ["CN", "MCI", "AD"] * (n // 3)}
    )
    labels.to_csv(root / "labels.csv", index=False)
    return root / "vols", root / "labels.csv"


def _prepare(settings, out, capsys):
    code = main(["prepare", "--settings", json.dumps(settings), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_a_good_nifti_dataset_prepares(nifti_settings, tmp_path, capsys):
    vols, labels = _cohort(tmp_path)
    out = tmp_path / "out"
    code, _ = _prepare(nifti_settings(vols, labels), out, capsys)
    assert code == 0
    meta = pd.read_csv(out / "train_meta.csv")
    assert len(np.load(out / "train_hr.npy")) == len(meta) > 0
    # the HR pixel: the head's extent (at most the 28 voxels of 1.5 mm) over hr_size
    hr_size = nifti_settings(vols, labels)["hr_size"]
    assert (meta["pixel_mm"] > 0).all() and (meta["pixel_mm"] <= 28 * 1.5 / hr_size).all()
    assert json.loads((out / "dataset.json").read_text())["subjects_in_multiple_splits"] == 0


def _assert_one_line_error(code, err, *needles):
    assert code == 2
    last = err[-1]
    assert last.startswith("srda-bench prepare: error:")
    for needle in needles:
        assert needle in last, last


def _assert_no_outputs(out: Path):
    assert not out.exists() or not any(out.iterdir())
    staged = [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    assert staged == []


def test_missing_path(nifti_settings, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = _prepare(nifti_settings(tmp_path / "nope", tmp_path / "l.csv"), out, capsys)
    _assert_one_line_error(code, err, "nope")
    _assert_no_outputs(out)


def test_truncated_nifti(nifti_settings, tmp_path, capsys):
    vols, labels = _cohort(tmp_path)
    bad = vols / "sub-04.nii.gz"
    bad.write_bytes(bad.read_bytes()[:200])
    out = tmp_path / "out"
    code, err = _prepare(nifti_settings(vols, labels), out, capsys)
    _assert_one_line_error(code, err, "sub-04.nii.gz")
    _assert_no_outputs(out)


def test_4d_volume_with_several_frames(nifti_settings, tmp_path, capsys):
    vols, labels = _cohort(tmp_path)
    _volume(vols / "sub-02.nii.gz", shape=(24, 28, 20, 3))
    out = tmp_path / "out"
    code, err = _prepare(nifti_settings(vols, labels), out, capsys)
    _assert_one_line_error(code, err, "sub-02.nii.gz", "frames")
    _assert_no_outputs(out)


def test_nan_voxels(nifti_settings, tmp_path, capsys):
    vols, labels = _cohort(tmp_path)
    _volume(vols / "sub-07.nii.gz", value=np.nan)
    out = tmp_path / "out"
    code, err = _prepare(nifti_settings(vols, labels), out, capsys)
    _assert_one_line_error(code, err, "sub-07.nii.gz", "NaN")
    _assert_no_outputs(out)


def test_labels_csv_misses_a_subject_or_has_an_unknown_label(nifti_settings, tmp_path, capsys):
    vols, labels = _cohort(tmp_path)
    table = pd.read_csv(labels)
    table[table["subject"] != "sub-05"].to_csv(labels, index=False)
    code, err = _prepare(nifti_settings(vols, labels), tmp_path / "out", capsys)
    _assert_one_line_error(code, err, "labels.csv", "sub-05")
    table.loc[0, "label"] = "Foo"
    table.to_csv(labels, index=False)
    code, err = _prepare(nifti_settings(vols, labels), tmp_path / "out", capsys)
    _assert_one_line_error(code, err, "Foo")


def test_empty_class_folder(base_config, tmp_path, capsys):
    from PIL import Image

    root = tmp_path / "kaggle"
    for cls in ("NonDemented", "MildDemented", "VeryMildDemented"):
        (root / cls).mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((20, 16), 100, np.uint8)).save(root / "NonDemented" / f"{i}.png")
    config = {**base_config, "preset": "smoke"}
    config["datasets"] = {"k": {"source": "folders", "path": str(root)}}
    settings = dataset_job_settings(resolve(config), "k")
    code, err = _prepare(settings, tmp_path / "out", capsys)
    _assert_one_line_error(code, err, "MildDemented", "no images")


def test_console_script_exits_non_zero_with_one_line(tmp_path):
    exe = Path(sys.executable).parent / "srda-bench"
    settings = {"name": "x", "source": "nifti", "path": str(tmp_path / "missing")}
    proc = subprocess.run(
        [str(exe), "prepare", "--settings", json.dumps(settings), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr


def _labelled_cohort(root: Path, labels: list[str]):
    subjects = [f"sub-{i:02d}" for i in range(len(labels))]
    for s in subjects:
        _volume(root / "vols" / f"{s}.nii.gz")
    pd.DataFrame({"subject": subjects, "label": labels}).to_csv(root / "labels.csv", index=False)
    return root / "vols", root / "labels.csv"


def test_a_cohort_too_small_for_the_split_is_refused_naming_dataset_and_labels(
    nifti_settings, tmp_path, capsys
):
    vols, labels = _labelled_cohort(tmp_path, ["CN", "MCI", "MCI", "AD"])
    out = tmp_path / "out"
    code, err = _prepare(nifti_settings(vols, labels), out, capsys)
    _assert_one_line_error(
        code, err, f"{labels}: dataset mine:", "CN 1 subject", "at least 3", "would be empty"
    )
    _assert_no_outputs(out)


def test_a_configured_class_without_images_is_refused_unless_left_out(
    nifti_settings, tmp_path, capsys
):
    vols, labels = _labelled_cohort(tmp_path, ["CN", "AD"] * 3)
    out = tmp_path / "out"
    code, err = _prepare(nifti_settings(vols, labels), out, capsys)
    _assert_one_line_error(
        code, err, f"{labels}: dataset mine:", "no images of class MCI", "classes: [CN, AD]"
    )
    _assert_no_outputs(out)
    code, _ = _prepare(nifti_settings(vols, labels, classes=["CN", "AD"]), out, capsys)
    assert code == 0
    assert json.loads((out / "dataset.json").read_text())["classes"] == ["CN", "AD"]


def test_class_folders_too_small_for_the_split_are_refused(base_config, tmp_path, capsys):
    from PIL import Image

    root = tmp_path / "kaggle"
    for cls, n in (("NonDemented", 1), ("VeryMildDemented", 2), ("MildDemented", 1)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((20, 16), 100, np.uint8)).save(root / cls / f"{i}.png")
    config = {**base_config, "preset": "smoke"}
    config["datasets"] = {"k": {"source": "folders", "path": str(root)}}
    out = tmp_path / "out"
    code, err = _prepare(dataset_job_settings(resolve(config), "k"), out, capsys)
    _assert_one_line_error(code, err, f"{root}: dataset k:", "NonDemented 1 subject")
    _assert_no_outputs(out)


def test_settings_can_come_in_a_json_file_as_the_rules_pass_them(nifti_settings, tmp_path):
    vols, labels = _cohort(tmp_path)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(nifti_settings(vols, labels)))
    assert main(["prepare", "--settings", str(settings), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "dataset.json").is_file()
    with pytest.raises(SystemExit):
        main(["prepare", "--settings", str(tmp_path / "nope.json"), "--out", str(tmp_path)])
