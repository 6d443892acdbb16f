"""GPU-hours the paper preset takes, from FLOPs measured per image and the protocol's step counts.

    GPU-hours = total FLOPs / (GPU peak x assumed utilisation) / 3600

Total FLOPs, per dataset of the paper preset and per seed and scale:

- SR training of every learned method: the trainer's steps (``ceil(epochs x train images /
  batch)``, ``srda.run.train_steps``) x batch x the method's training FLOPs per image (forward
  and backward, counted with ``FlopCounterMode`` at the benchmark patch and scaled by the
  patch area to the dataset's patch);
- super-resolving every split once (forward FLOPs per LR image, scaled by area);
- the Table III classifiers (one per configured method, plus the LR and HR rows): ResNet of the
  preset's depth, forward and backward per image at the images' size, ``ceil(epochs x train
  images / batch)`` steps.

Training images per 3D dataset = subjects in the train split x slices kept per volume; the
slices per volume come from one synthetic subject made at the preset's voxel size and sliced
with the preset's settings (``srda.data.slicing.volume_to_slices``). Not counted: validation
passes, optimiser updates and element-wise ops (FlopCounterMode counts matrix multiplies and
convolutions), data loading. Every assumption is written into the result.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from benchlib import count_flops

logger = logging.getLogger("bench")

#: Default GPU: dense bf16 tensor-core peak of an NVIDIA A100 SXM (312 TFLOP/s, no sparsity).
GPU_NAME = "NVIDIA A100 SXM (bf16 dense tensor-core peak)"
GPU_PEAK_TFLOPS = 312.0
#: Sustained share of that peak a convolutional training job reaches (model FLOPs utilisation).
GPU_UTILISATION = 0.40


def slices_per_volume(settings: dict[str, Any]) -> dict[str, Any]:
    """Slices the data stage keeps from one synthetic volume of this dataset's settings."""
    from srda.data import synthetic
    from srda.data.slicing import volume_to_slices

    syn = settings["synthetic"]
    subject = synthetic.draw_subject(syn["seed"], settings["modality"], 1, 0, syn["severity"])
    vol, _mask, grid = synthetic.make_volume(
        subject, settings["modality"], syn["voxel_mm"], syn["seed"]
    )
    zooms = (syn["voxel_mm"],) * 3
    kept = volume_to_slices(
        vol,
        zooms,
        plane=settings["plane"],
        hr_size=16,  # the count does not depend on the output size
        min_brain_fraction=settings["min_brain_fraction"],
        slices_per_volume=settings["slices_per_volume"],
        clip_percentiles=tuple(settings["clip_percentiles"]),
    )
    return {"slices": int(len(kept.images)), "volume_shape": list(grid.shape)}


def classifier_flops_per_image(depth: int, size: int, num_classes: int = 3) -> int:
    """Forward + backward FLOPs of the Table III ResNet on one size x size image (meta device)."""
    from srda.models.diagnosis import DiagnosisNet

    with torch.device("meta"):
        net = DiagnosisNet(num_classes=num_classes, in_channels=1, attention_at=None, depth=depth)
        x = torch.empty(1, 1, size, size)
    net.train()
    return count_flops(lambda: net(x).sum().backward())


def estimate(
    cfg: dict[str, Any],
    method_flops: dict[str, dict[str, Any]],
    bench_patch: int,
    bench_lr: int,
    gpu_name: str = GPU_NAME,
    gpu_peak_tflops: float = GPU_PEAK_TFLOPS,
    gpu_utilisation: float = GPU_UTILISATION,
    model_sizes: str = "paper",
) -> dict[str, Any]:
    """GPU-hours of the resolved preset ``cfg`` (see the module docstring).

    ``method_flops``: method -> {"train": FLOPs per training image at ``bench_patch`` (None when
    the method is not trained), "infer": forward FLOPs per LR image of ``bench_lr`` pixels}.
    """
    from srda.config import enabled_reference_rows, method_job_settings
    from srda.run import train_steps

    if not (gpu_peak_tflops > 0 and 0 < gpu_utilisation <= 1):
        raise ValueError("GPU peak must be > 0 and utilisation in (0, 1]")
    sustained = gpu_peak_tflops * 1e12 * gpu_utilisation
    repeats = len(cfg["seeds"]) * len(cfg["scales"])
    train_fraction = cfg["split_fractions"]["train"]
    diag = cfg["diagnosis"]
    references = enabled_reference_rows(cfg)
    # every reference row runs at the HR size but lr_native (LR at its own size)
    native_rows = int("lr_native" in references)
    rows_per_dataset = len(cfg["run_methods"]) + len(references) if diag.get("enabled", True) else 0
    datasets: dict[str, Any] = {}
    by_method: dict[str, float] = {}
    totals = {"sr_training": 0.0, "sr_inference": 0.0, "classifiers": 0.0}
    for name in cfg["run_datasets"]:
        ds = cfg["datasets"][name]
        syn = ds.get("synthetic") or {}
        if ds["source"] != "synthetic":
            datasets[name] = {"skipped": "not the embedded cohort: image counts unknown here"}
            continue
        subjects = int(syn["n_subjects"])
        if syn["kind"] == "volumes":
            spv = slices_per_volume(ds)
            per_subject = spv["slices"]
        else:
            spv, per_subject = None, 1
        n_total = subjects * per_subject
        n_train = round(subjects * train_fraction) * per_subject
        hr, lr = ds["hr_size"], ds["hr_size"] // 4
        row: dict[str, Any] = {
            "subjects": subjects,
            "slices_per_subject": per_subject,
            "slices_per_volume_probe": spv,
            "images_total": n_total,
            "images_train": n_train,
            "hr_size": hr,
            "patch": ds["patch"],
            "batch_size": ds["batch_size"],
            "methods": {},
        }
        for method, f in method_flops.items():
            settings = method_job_settings(cfg, name, method)
            m: dict[str, Any] = {}
            if f.get("train"):
                batch = settings["batch_size"]
                steps = train_steps(settings["train"], n_train, batch)
                flops = steps * batch * f["train"] * (settings["patch"] / bench_patch) ** 2
                m.update(steps=steps, batch=batch, epochs=settings["train"].get("epochs"))
                m["train_flops"] = flops * repeats
                totals["sr_training"] += flops * repeats
                by_method[method] = by_method.get(method, 0.0) + flops * repeats
            if f.get("infer"):
                flops = n_total * f["infer"] * (lr / bench_lr) ** 2
                m["infer_flops"] = flops * repeats
                totals["sr_inference"] += flops * repeats
            row["methods"][method] = m
        if rows_per_dataset:
            depth, batch = int(diag["depth"]), int(diag["batch_size"])
            steps = max(1, train_steps(diag, n_train, batch))  # as the classifier counts them
            f_hr = classifier_flops_per_image(depth, hr)
            f_lr = classifier_flops_per_image(depth, lr)
            hr_rows = rows_per_dataset - native_rows
            flops = steps * batch * (hr_rows * f_hr + native_rows * f_lr)
            row["classifiers"] = {
                "rows": rows_per_dataset,
                "depth": depth,
                "steps": steps,
                "batch": batch,
                "flops_per_image_hr": f_hr,
                "flops_per_image_lr": f_lr,
                "flops": flops * repeats,
            }
            totals["classifiers"] += flops * repeats
        datasets[name] = row
    total = sum(totals.values())
    hours = {k: v / sustained / 3600 for k, v in totals.items()}
    return {
        "gpu_hours": total / sustained / 3600,
        "gpu_hours_by_part": hours,
        "gpu_hours_by_method_training": {k: v / sustained / 3600 for k, v in by_method.items()},
        "gpu_hours_srda_training": by_method.get("srda", 0.0) / sustained / 3600,
        "total_flops": total,
        "flops_by_part": totals,
        "datasets": datasets,
        "methods_counted": sorted(method_flops),
        "assumptions": {
            "gpu": gpu_name,
            "gpu_peak_tflops": gpu_peak_tflops,
            "gpu_utilisation": gpu_utilisation,
            "sustained_tflops": sustained / 1e12,
            "preset": cfg.get("preset"),
            "model_sizes": model_sizes,
            "seeds": len(cfg["seeds"]),
            "scales": list(cfg["scales"]),
            "train_fraction": train_fraction,
            "flops_counted": "matrix multiplies and convolutions (torch FlopCounterMode, "
            "deformable conv added), forward + backward; not optimiser updates, element-wise "
            "ops, validation or data loading",
            "flops_scaling": f"FLOPs per image measured at HR patch {bench_patch} (training) "
            f"and LR {bench_lr} (inference), scaled by pixel count to each dataset's sizes",
            "images": "train images = round(subjects x train fraction) x slices kept per "
            "volume (one synthetic subject sliced with the preset's settings)",
        },
    }
