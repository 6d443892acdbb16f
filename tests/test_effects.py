"""The effect-size check of the embedded cohort: known answers of the measures and the summary,
severity 0 gives no effect (paired draws: exactly), a stronger disease shrinks more, MCI sits
between CN and AD, and the CLI reports each target. Large voxels and two subjects keep it fast."""

import json

import numpy as np
import pytest
import yaml

from srda.cli import main
from srda.data import effects, synthetic
from srda.errors import InputError


def _settings(modality: str = "mri", severity: float = 1.0, voxel_mm: float = 6.0, **syn) -> dict:
    kind = syn.pop("kind", "volumes")
    return {
        "name": f"tiny-{modality}",
        "source": "synthetic",
        "modality": modality,
        "synthetic": {"kind": kind, "severity": severity, "voxel_mm": voxel_mm, "seed": 0, **syn},
    }


def _by_key(check: effects.DatasetCheck) -> dict[str, effects.Effect]:
    return {e.quantity.key: e for e in check.effects}


def test_volume_measures_have_known_answers():
    grid = synthetic.volume_grid("pet", 6.0)
    mask = np.zeros(grid.shape, np.uint8)
    mask[2:5, 2:5, 2:5] = synthetic.ROI_HIPPOCAMPUS  # 27 voxels of 216 mm^3
    mask[10:12, 10:11, 10:11] = synthetic.ROI_VENTRICLES
    mask[20:30, 20:30, 20:21] = synthetic.ROI_AD_CORTEX
    vol = np.ones(grid.shape, np.float32)
    vol[mask == synthetic.ROI_AD_CORTEX] = 0.8
    out = effects.measure_volume(vol, mask, grid, "pet")
    assert out["hippocampus"] == 27 * 216.0
    assert out["ventricles"] == 2 * 216.0
    assert out["cortex_gm"] == 100 * 216.0
    assert out["fdg_suvr"] == pytest.approx(0.8)  # the cerebellar box holds activity 1


def test_sheet_thickness_of_a_slab_is_its_thickness():
    slab = np.zeros((104, 104, 7), bool)
    slab[2:102, 2:102, 2:5] = True  # 3 voxels thick, 100 x 100 wide
    t = effects._thickness_3d(slab, 1.0)
    assert 2.7 < t < 3.0  # the rim adds ~6 % of area
    assert effects._thickness_3d(slab, 2.0) == pytest.approx(2 * t)
    band = np.zeros((64, 64), bool)
    band[10:14, 2:62] = True  # 4 px wide strip
    assert 3.3 < effects._thickness_2d(band) < 4.0


def test_summary_of_proportional_paired_values_is_exact():
    q = effects.quantities("volumes", "mri")[0]  # hippocampus, a ratio
    values = {"CN": np.array([10.0, 20.0]), "MCI": np.array([8.0, 16.0]), "AD": [7.5, 15.0]}
    e = effects.summarise(q, values, synthetic.CLASSES_3D, paired=True, boot=200)
    assert e.effect["MCI"] == pytest.approx((0.8, 0.8, 0.8))
    assert e.effect["AD"] == pytest.approx((0.75, 0.75, 0.75))
    assert e.in_target and e.mci_between and e.meets
    swapped = effects.summarise(
        q, {**values, "MCI": values["AD"], "AD": values["MCI"]}, synthetic.CLASSES_3D, True, 200
    )
    assert swapped.in_target and not swapped.mci_between and not swapped.meets  # MCI beyond AD


@pytest.mark.parametrize("modality", ["mri", "pet"])
def test_severity_zero_gives_no_effect_exactly(modality):
    check = effects.check_dataset(_settings(modality, severity=0.0), subjects=2, boot=100)
    for e in check.effects:
        none = 1.0 if e.quantity.effect == "ratio" else 0.0
        for cls in ("MCI", "AD"):
            assert e.effect[cls][0] == none, e.quantity.key
        assert not e.mci_between  # nothing lies strictly between two equal ends
    assert "fdg_suvr" in _by_key(check) if modality == "pet" else "fdg_suvr" not in _by_key(check)


def test_a_higher_severity_shrinks_the_hippocampus_more_and_mci_lies_between():
    mild = _by_key(effects.check_dataset(_settings(severity=1.0), subjects=2, boot=100))
    strong = _by_key(effects.check_dataset(_settings(severity=2.0), subjects=2, boot=100))
    assert strong["hippocampus"].effect["AD"][0] < mild["hippocampus"].effect["AD"][0] < 1.0
    assert strong["ventricles"].effect["AD"][0] > mild["ventricles"].effect["AD"][0] > 1.0
    for e in mild.values():
        assert e.mci_between, e.quantity.key
    assert mild["cortex_nominal"].effect["AD"][0] == pytest.approx(synthetic.MODEL.cortex_mm)


def test_2d_sets_measure_areas_under_their_own_class_names():
    check = effects.check_dataset(_settings(kind="slices"), subjects=2, boot=100)
    assert check.classes == synthetic.CLASSES_2D
    by = _by_key(check)
    assert by["hippocampus"].quantity.unit == "mm^2"
    assert by["ventricles"].effect["MildDemented"][0] > 1.0


def test_the_check_refuses_what_it_cannot_measure():
    with pytest.raises(InputError, match="source: synthetic"):
        effects.check_dataset({**_settings(), "source": "nifti"})
    with pytest.raises(InputError, match="at least 2"):
        effects.check_dataset(_settings(), subjects=1)


def _overlay(tmp_path, synthetic_settings: dict) -> str:
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"adni-mri": {"synthetic": synthetic_settings}}}))
    return str(path)


def test_cli_prints_every_target_and_writes_json(capsys, tmp_path):
    out = tmp_path / "effects.json"
    argv = ["cohort-check", "--preset", "smoke", "--dataset", "adni-pet", "--subjects", "2"]
    assert main([*argv, "--json", str(out)]) == 0  # a measurement: exit 0 whatever it finds
    text = capsys.readouterr().out
    for target in ("AD 0.7-0.85", "AD 1.2-2", "AD 10-25 %", "0 < AD - CN <= 0.5 mm"):
        assert target in text
    assert "### adni-pet" in text and "### Summary" in text
    report = json.loads(out.read_text())
    (pet,) = report["datasets"]
    assert report["preset"] == "smoke" and pet["subjects_per_class"] == 2
    assert set(pet["effects"]) >= {"hippocampus", "ventricles", "fdg_suvr", "cortex_nominal"}
    assert len(pet["values"]["hippocampus"]["AD"]) == 2


def test_strict_exits_1_on_a_missed_target_and_0_when_all_are_met(capsys, tmp_path):
    argv = ["cohort-check", "--preset", "smoke", "--dataset", "adni-mri", "--subjects", "2"]
    too_strong = _overlay(tmp_path, {"severity": 4.0})  # hippocampus AD/CN ~0.36
    assert main([*argv, "--configfile", too_strong]) == 0
    assert main([*argv, "--configfile", too_strong, "--strict"]) == 1
    # The proposed adni-mri settings (docs/cohort.md) meet every target.
    proposed = _overlay(
        tmp_path,
        {"severity": 1.0, "markers": {"hippocampus": 1.0, "ventricles": 1.0, "cortex": 0.75}},
    )
    assert main([*argv, "--configfile", proposed, "--strict"]) == 0
    assert "| adni-mri |" in capsys.readouterr().out


def test_the_default_cohort_meets_every_literature_target(capsys):
    # config.yaml's synthetic settings, at the smoke preset's voxel size (the ratios agree
    # with the quick preset's to 0.01: docs/cohort.md)
    argv = ["cohort-check", "--preset", "smoke", "--subjects", "8", "--strict"]
    assert main(argv) == 0, capsys.readouterr().out


def test_the_report_has_a_row_per_quantity_and_one_per_dataset_in_the_summary():
    classes = synthetic.CLASSES_3D
    rows = [
        effects.Effect(
            q,
            dict.fromkeys(classes, 2.0),
            dict.fromkeys(classes, 0.1),
            dict.fromkeys(classes, (0.8, 0.7, 0.9)),
            True,
            True,
            True,
        )
        for q in effects.quantities("volumes", "pet")
    ]
    check = effects.DatasetCheck(
        "tiny-pet",
        "volumes",
        "pet",
        classes,
        2,
        True,
        {"severity": 1.0, "markers": dict(synthetic.DEFAULT_MARKERS)},
        1.25,
        rows,
    )
    text = effects.render_markdown([check])
    lines = text.splitlines()
    header = f"| quantity | unit | {' | '.join(classes)} | effect |"
    table = [i for i, line in enumerate(lines) if line.startswith(header)]
    assert len(table) == 1 and lines[table[0] + 1] == "|" + "---|" * 10
    assert (
        sum(line.startswith("| ") for line in lines) == 2 + len(rows) + 1
    )  # 2 headers, the rows, 1 summary row
    assert (
        lines[-1]
        == "| tiny-pet | 0.80 (0.80) | 0.80 (0.80) | 0.800 | -0.80 | 0.80 | 0.8 (0.8) | 6/6 | 1.2 |"
    )
    assert text.endswith("|\n") and "\n\n### Summary\n\n| dataset |" in text
