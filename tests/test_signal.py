"""The class-signal check: known answers of the lost share, where the embedded cohort's class
signal lives, and the CLI."""

import numpy as np
import pytest

from srda.cli import main
from srda.config import dataset_job_settings, resolve
from srda.data.signal import class_signal, lost_share
from srda.data.synthetic import DEFAULT_MARKERS
from srda.errors import InputError


def test_a_smooth_difference_survives_and_a_pixel_pattern_does_not():
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    base = np.full((64, 64), 0.5)
    smooth = base + 0.1 * np.cos(2 * np.pi * xx) * np.cos(2 * np.pi * yy)  # one period
    checker = base + 0.1 * ((np.indices((64, 64)).sum(0) % 2) * 2 - 1)  # Nyquist of HR
    lost_smooth, rms = lost_share(base, smooth, 4)
    lost_checker, _ = lost_share(base, checker, 4)
    assert lost_smooth < 0.01
    assert lost_checker > 0.99
    assert rms == pytest.approx(0.05, rel=0.01)  # rms of 0.1 cos cos


def test_the_share_is_of_the_difference_not_of_the_images():
    rng = np.random.default_rng(0)
    texture = rng.random((32, 32))  # HR detail shared by both images: cancels
    yy = np.mgrid[0:32, 0:32][0] / 32.0
    lost, _ = lost_share(texture, texture + 0.05 * np.sin(np.pi * yy), 4)
    assert lost < 0.02


def test_lost_share_refuses_no_signal_and_sizes_that_do_not_divide():
    img = np.ones((32, 32))
    with pytest.raises(ValueError, match="no class signal"):
        lost_share(img, img, 4)
    with pytest.raises(ValueError, match="does not divide"):
        lost_share(np.ones((30, 32)), np.zeros((30, 32)), 4)


@pytest.fixture
def smoke_cfg(base_config):
    return resolve({**base_config, "preset": "smoke"})


def test_the_mri_class_signal_is_finer_than_pets(smoke_cfg):
    # The calibration in docs/cohort.md: MRI's atrophy markers lose much more of their class
    # difference at x4 than PET's regional FDG drop does.
    mri = class_signal(dataset_job_settings(smoke_cfg, "adni-mri"), 4, pairs=2)
    pet = class_signal(dataset_job_settings(smoke_cfg, "adni-pet"), 4, pairs=2)
    assert mri.slices == pet.slices == 8  # 4 slices per volume in the smoke preset
    assert 0.0 < pet.lost_share < mri.lost_share < 1.0
    assert mri.lost_share > 2 * pet.lost_share
    assert mri.signal_rms > 0 and pet.signal_rms > 0


def test_class_signal_is_deterministic_and_works_on_2d_sets(smoke_cfg):
    settings = dataset_job_settings(smoke_cfg, "demented-mri")
    a = class_signal(settings, 4, pairs=2)
    b = class_signal(settings, 4, pairs=2)
    assert a == b
    assert a.slices == 2 and 0.0 < a.lost_share < 1.0


def test_class_signal_refuses_what_it_cannot_measure(smoke_cfg):
    settings = dataset_job_settings(smoke_cfg, "adni-pet")
    no_disease = {**settings, "synthetic": {**settings["synthetic"], "severity": 0.0}}
    with pytest.raises(InputError, match="severity is 0"):
        class_signal(no_disease, 4)
    unmarked = {**settings["synthetic"], "markers": {k: 0.0 for k in DEFAULT_MARKERS}}
    with pytest.raises(InputError, match="no class signal"):
        class_signal({**settings, "synthetic": unmarked}, 4, pairs=1)
    with pytest.raises(InputError, match="source: synthetic"):
        class_signal({**settings, "source": "nifti"}, 4)
    with pytest.raises(InputError, match="axially"):
        class_signal({**settings, "plane": "coronal"}, 4)


def test_cli_prints_one_row_per_dataset_and_scale(capsys):
    argv = ["cohort-signal", "--preset", "smoke", "--dataset", "adni-pet", "--pairs", "1"]
    assert main(argv) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| adni-pet")]
    assert len(rows) == 1 and "| x4 | 1 | 4 |" in rows[0]


def test_cli_names_an_unknown_dataset_and_an_unreadable_overlay(capsys, tmp_path):
    assert main(["cohort-signal", "--preset", "smoke", "--dataset", "adni-ct"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no dataset 'adni-ct'" in err[0]
    missing = tmp_path / "mine.yaml"
    assert main(["cohort-signal", "--configfile", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
