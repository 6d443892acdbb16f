"""The labels-table check made when the workflow starts: no image is read."""

from pathlib import Path

import pytest

from srda.config import dataset_job_settings, resolve
from srda.data.labels import check_labels
from srda.errors import InputError


@pytest.fixture
def settings_for(base_config, tmp_path):
    """Job settings of a nifti dataset 'mine' whose labels CSV holds ``rows`` (no volumes)."""

    def make(rows: str, **entry):
        (tmp_path / "vols").mkdir(exist_ok=True)
        labels = tmp_path / "labels.csv"
        labels.write_text("subject,label\n" + rows)
        config = {**base_config, "preset": "smoke"}
        config["datasets"] = {
            "mine": {"source": "nifti", "path": str(tmp_path / "vols"), "labels": str(labels)}
            | entry
        }
        return dataset_job_settings(resolve(config), "mine"), labels

    return make


def _rows(*labels: str) -> str:
    return "".join(f"s{i},{label}\n" for i, label in enumerate(labels))


def test_a_class_with_fewer_subjects_than_the_split_needs_is_refused(settings_for):
    settings, labels = settings_for(_rows("CN", "MCI", "MCI", "AD"))
    with pytest.raises(InputError) as err:
        check_labels(settings)
    assert err.value.where == str(labels)
    assert err.value.problem.startswith("dataset mine: too few subjects per class")
    assert "CN 1 subject, MCI 2 subjects, AD 1 subject" in err.value.problem
    assert "at least 3" in err.value.problem and "labels table" in err.value.problem
    check_labels(settings_for(_rows(*["CN", "MCI", "AD"] * 3))[0])


def test_a_configured_class_no_subject_has_is_refused_with_what_was_found(settings_for):
    rows = _rows("CN", "CN", "CN", "EMCI", "AD", "AD", "AD")
    settings, labels = settings_for(rows)
    with pytest.raises(InputError, match=r"no subject of class MCI") as err:
        check_labels(settings)
    assert err.value.where == str(labels)
    assert "other labels (subjects): EMCI 1" in err.value.problem
    assert "classes: [CN, AD]" in err.value.problem
    # mapped, MCI has one subject: now it is the split that refuses it
    mapped, _ = settings_for(rows, label_map={"EMCI": "MCI"})
    with pytest.raises(InputError, match=r"MCI 1 subject;"):
        check_labels(mapped)
    # left out explicitly, the class is no longer needed (EMCI subjects without volumes are
    # not this check's business: the data stage refuses them if they have images)
    dropped, _ = settings_for(rows, classes=["CN", "AD"])
    check_labels(dropped)


def test_slice_mode_leaves_the_counts_to_the_data_stage(settings_for):
    settings, _ = settings_for(_rows("CN", "MCI", "AD"))
    settings["split"] = "slices"
    check_labels(settings)  # one subject per class can give three slices per class
    settings["classes"] = ["CN", "MCI", "AD", "SMC"]
    with pytest.raises(InputError, match="no subject of class SMC"):
        check_labels(settings)


def test_participants_tsv_is_the_labels_table_of_a_bids_folder(settings_for, tmp_path: Path):
    settings, _ = settings_for(_rows("CN"))
    settings["labels"] = None
    (tmp_path / "vols" / "participants.tsv").write_text(
        "participant_id\tdiagnosis\n" + "".join(f"sub-{i}\tCN\n" for i in range(3))
    )
    with pytest.raises(InputError, match="no subject of class MCI, AD") as err:
        check_labels(settings)
    assert err.value.where == str(tmp_path / "vols" / "participants.tsv")


def test_other_sources_are_not_read(settings_for):
    settings, _ = settings_for(_rows("CN"))
    check_labels({**settings, "source": "folders"})
