import numpy as np
import pandas as pd

from srda.report.tables import LONG_COLUMNS, render, summarise


def _per_image(seeds=(0,)):
    rng = np.random.default_rng(0)
    rows = []
    for dataset in ("adni-mri", "adni-pet"):
        for method, offset in (("bicubic", 0.0), ("srda", 3.0)):
            for seed in seeds:
                for i in range(12):
                    rows.append(
                        {
                            "dataset": dataset,
                            "scale": 4,
                            "method": method,
                            "seed": seed,
                            "subject": f"s{i // 3}",
                            "psnr": 27 + offset + rng.normal(),
                            "ssim": 0.8 + offset / 100,
                        }
                    )
    return pd.DataFrame(rows)


def test_long_form_columns_and_intervals():
    long = summarise(_per_image(), ["psnr", "ssim"], n_boot=200)
    assert list(long.columns) == LONG_COLUMNS
    assert len(long) == 2 * 2 * 2
    assert (long["ci_low"] <= long["value"]).all() and (long["value"] <= long["ci_high"]).all()
    assert set(long["metric"]) == {"psnr", "ssim"}


def test_rendered_table_bolds_the_best_and_averages_seeds():
    long = summarise(_per_image(seeds=(0, 1)), ["psnr", "ssim"], n_boot=0)
    md, tex = render(
        long,
        {"bicubic": "Bicubic", "srda": "SRDA"},
        ["adni-mri", "adni-pet"],
        ["psnr", "ssim"],
        "Table I",
    )
    srda_row = next(line for line in md.splitlines() if line.startswith("| SRDA"))
    assert srda_row.count("**") == 8 and "±" in srda_row
    assert "Bicubic" in md and "\\textbf" in tex and "$\\pm$" in tex
    assert "x4" in md
