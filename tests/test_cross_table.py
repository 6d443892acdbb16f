"""The cross-degradation table's numbers and rendering (srda.report.cross_degradation)."""

import numpy as np
import pandas as pd
import pytest

from srda.report.cross_degradation import cross_long, heatmap_figure, markdown, read_cells

DEGS = ("bicubic", "kspace")


def _cells(tmp_path, shift):
    """Metrics CSVs for method m trained on each degradation and tested on each: 4 subjects
    x 3 images; psnr = 30 + the subject's offset + shift[(train, test)]."""
    paths = {}
    for train in DEGS:
        for test in DEGS:
            rows = []
            for i in range(12):
                subject = f"s{i // 3}"
                rows.append(
                    {
                        "index": i,
                        "subject": subject,
                        "slice": i % 3,
                        "label": "CN",
                        "psnr": 30.0 + (i // 3) + shift[(train, test)] + 0.01 * (i % 3),
                        "ssim": 0.9 + 0.01 * shift[(train, test)],
                    }
                )
            path = tmp_path / f"{train}_{test}.csv"
            pd.DataFrame(rows).to_csv(path, index=False)
            paths[("toy", 4, "m", 0, train, test)] = path
    return paths


SHIFT = {
    ("bicubic", "bicubic"): 0.0,
    ("bicubic", "kspace"): -2.0,
    ("kspace", "bicubic"): -0.5,
    ("kspace", "kspace"): 1.0,
}


def test_cells_and_gaps_to_the_matched_network(tmp_path):
    long = cross_long(read_cells(_cells(tmp_path, SHIFT)), n_boot=200)
    value = long.set_index(["train_degradation", "test_degradation", "metric"])["value"]
    assert value[("bicubic", "bicubic", "psnr")] == pytest.approx(31.51)
    assert value[("kspace", "kspace", "psnr")] == pytest.approx(32.51)
    # trained on bicubic, tested on kspace: 3 dB below the network trained on kspace
    assert value[("bicubic", "kspace", "psnr_minus_matched")] == pytest.approx(-3.0)
    assert value[("kspace", "bicubic", "psnr_minus_matched")] == pytest.approx(-0.5)
    assert ("bicubic", "bicubic", "psnr_minus_matched") not in value.index
    gap = long[long["metric"] == "psnr_minus_matched"]
    # the gap is the same for every subject, so its paired interval has no width
    assert np.allclose(gap["ci_low"], gap["value"]) and np.allclose(gap["ci_high"], gap["value"])
    # the scores themselves vary between subjects: their interval does
    cell = long[long["metric"] == "psnr"].iloc[0]
    assert cell["ci_low"] < cell["value"] < cell["ci_high"]
    assert set(long["n_subjects"]) == {4}


def test_markdown_and_heatmap(tmp_path):
    long = cross_long(read_cells(_cells(tmp_path, SHIFT)), n_boot=0)
    md = markdown(long, {"m": "M"})
    assert "### toy, x4 (PSNR, 4 test subjects)" in md
    assert "| method | trained on | tested on bicubic | tested on kspace |" in md
    assert "| M | bicubic | 31.51 | 29.51; -3.00 vs matched |" in md
    fig = heatmap_figure(long, "toy", {"m": "M"})
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sorted(texts) == sorted(["31.51", "29.51", "31.01", "32.51"])


def test_a_matched_cell_over_other_images_is_refused(tmp_path):
    paths = _cells(tmp_path, SHIFT)
    path = paths[("toy", 4, "m", 0, "kspace", "kspace")]
    frame = pd.read_csv(path)
    frame["index"] += 1
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="score different test images"):
        cross_long(read_cells(paths), n_boot=0)
