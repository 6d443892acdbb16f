"""Model throughput for the harness: SRDA plain vs tuned, every method, and the SR body.

Models are built the way a workflow job builds them (``srda.run.build_model`` on the settings
``srda.config.method_job_settings`` resolves from ``config.yaml`` and a preset), so "paper size"
means exactly the paper preset's networks (SRDA: 256 features, 32 blocks, ResNet50 diagnosis
network with attention at the stem). The batch is synthetic (``bench_srda_train.make_batch``):
data loading and validation are not measured.

- ``srda_plain_vs_tuned``: the SRDA joint training step, plain (fp32, default memory format,
  the trainer's Adam) against tuned candidates (bf16 autocast with the deformable conv kept in
  fp32, channels_last, fused Adam), all in the same process from the same initial weights.
  ``skip_precisions`` leaves out the candidates of a precision (the harness passes bf16 on a
  CPU without native bf16, where the tuned figure is then the best fp32 candidate).
- ``bench_methods``: per method, training images/s (one optimiser step of its trainer
  objective, fp32) and inference images/s (SR network forward on LR images, no grad), with the
  FLOPs of each per image.
- ``body_gflops``: SRDA's residual body (the 32 blocks and the conv after them), forward and
  backward, FLOPs counted over median time.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bench_srda_train as bst
import torch
from benchlib import count_flops, split_deadline, time_steps
from torch import nn

from srda.run import sr_network
from srda.train.step import train_step

logger = logging.getLogger("bench")

NUM_CLASSES = 3
SCALE = 4
#: Images per FLOP count (FLOPs are linear in the batch; see train_flops_per_image).
FLOP_BATCH = 2

#: Tuned candidates for the SRDA step: name -> (precision, channels_last, fused Adam).
TUNED_CANDIDATES: dict[str, dict[str, Any]] = {
    "fp32+channels_last+fused_adam": {"precision": "fp32", "channels_last": True, "fused": True},
    "bf16+channels_last+fused_adam": {"precision": "bf16", "channels_last": True, "fused": True},
    "bf16+fused_adam": {"precision": "bf16", "channels_last": False, "fused": True},
}


# --------------------------------------------------------------------------------------------
# Settings and models


@dataclass(frozen=True)
class Workload:
    """What every model measurement shares: the resolved config and the dataset whose method
    settings it takes (``srda.config.method_job_settings``), the training batch and HR patch,
    and the untimed and timed steps per measurement."""

    cfg: dict[str, Any]
    dataset: str
    batch: int
    patch: int
    warmup: int
    steps: int

    def settings(self, method: str) -> dict[str, Any]:
        from srda.config import method_job_settings

        return method_job_settings(self.cfg, self.dataset, method)


def python_methods(cfg: dict[str, Any], selection: Sequence[str] | None = None) -> list[str]:
    """Config methods with a registered architecture (outside tools have none), config order."""
    import baselines  # noqa: F401  (registers every architecture)
    from srda import registry

    known = set(registry.names())
    names = [m for m, s in cfg["methods"].items() if not s["external"] and s.get("arch") in known]
    if selection:
        unknown = sorted(set(selection) - set(names))
        if unknown:
            raise SystemExit(f"--methods: unknown {unknown}; known: {', '.join(names)}")
        names = [m for m in names if m in selection]
    return names


def build(settings: dict[str, Any]) -> nn.Module:
    import baselines  # noqa: F401
    from srda.run import build_model

    return build_model(settings, SCALE, num_classes=NUM_CLASSES)


def objective_for(settings: dict[str, Any], model: nn.Module):
    """The objective the trainer uses for this method (``srda.run.objective_for``)."""
    from srda.run import objective_for as run_objective

    return run_objective(model, settings)[0]


def batch_of(n: int, patch: int, seed: int = 0, channels_last: bool = False):
    return bst.make_batch(n, patch, SCALE, 1, NUM_CLASSES, seed, channels_last)


# --------------------------------------------------------------------------------------------
# FLOPs per image


def train_flops_per_image(model: nn.Module, objective, patch: int) -> int:
    """FLOPs of one forward + backward of the training objective, per image.

    Counted on a batch of ``FLOP_BATCH`` (BatchNorm in training needs two values per channel,
    and a small patch leaves a 1x1 map at the end of a ResNet) and divided by it.
    """
    data = batch_of(FLOP_BATCH, patch, seed=1)
    model.train()

    def step() -> None:
        loss, _ = objective(model, data)
        loss.backward()

    flops = count_flops(step)
    model.zero_grad(set_to_none=True)
    return flops // FLOP_BATCH


def infer_flops_per_image(sr_net: nn.Module, lr_size: int) -> int:
    """FLOPs of the SR network's forward pass on one LR image of ``lr_size`` x ``lr_size``."""
    x = batch_of(FLOP_BATCH, lr_size * SCALE, seed=2)["lr"]
    sr_net.eval()
    with torch.no_grad():
        return count_flops(lambda: sr_net(x)) // FLOP_BATCH


# --------------------------------------------------------------------------------------------
# SRDA: plain vs tuned


def srda_plain_vs_tuned(
    work: Workload,
    candidates: Sequence[str],
    deadline: float | None,
    screen_factor: float = 2.0,
    skip_precisions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """SRDA joint training images/s: plain fp32 and every tuned candidate, same process.

    Plain: fp32, default memory format, ``torch.optim.Adam`` as the trainer makes it. Each
    candidate first takes one step (its warm-up); if that step is more than ``screen_factor``
    times the plain median it cannot win and its timed steps are skipped (``screened_out``,
    its images/s then from that one step). The tuned figure is the best candidate's.
    ``skip_precisions``: precision -> reason; a candidate of that precision takes no step and
    is recorded as ``skipped`` with the reason (the time budget is shared by the others).
    """
    skip_precisions = dict(skip_precisions or {})
    runnable = [n for n in candidates if TUNED_CANDIDATES[n]["precision"] not in skip_precisions]
    settings = work.settings("srda")
    batch, patch, steps = work.batch, work.patch, work.steps
    torch.manual_seed(0)
    model = build(settings)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    joint = settings["joint"]
    loss_kw = {
        "lambda1": joint["lambda1"],
        "lambda2": joint["lambda2"],
        "attention_loss": joint["attention_loss"],
    }
    results: dict[str, Any] = {}
    with bst.deterministic(True):
        logger.info("srda_train: plain fp32, %d warm-up + %d timed steps", work.warmup, steps)
        plain_deadline = split_deadline(deadline, 1 + len(runnable))
        plain = bst.run_precision(
            model,
            initial,
            batch_of(batch, patch),
            "fp32",
            work.warmup,
            steps,
            plain_deadline,
            **loss_kw,
        )
        plain["config"] = {"precision": "fp32", "channels_last": False, "fused": False}
        logger.info("srda_train: plain %.3f images/s", plain["images_per_second"])
        for name in candidates:
            spec = TUNED_CANDIDATES[name]
            if spec["precision"] in skip_precisions:
                results[name] = {"config": spec, "skipped": skip_precisions[spec["precision"]]}
                logger.warning("srda_train: %s skipped (%s)", name, results[name]["skipped"])
                continue
            if deadline is not None and time.perf_counter() > deadline:
                results[name] = {"config": spec, "skipped": "time budget spent"}
                logger.warning("srda_train: %s skipped (time budget spent)", name)
                continue
            if spec["fused"] and not _fused_adam_available():
                spec = {**spec, "fused": False}
            fmt = torch.channels_last if spec["channels_last"] else torch.contiguous_format
            model.to(memory_format=fmt)
            data = batch_of(batch, patch, channels_last=spec["channels_last"])
            cand_deadline = split_deadline(deadline, len(runnable) - runnable.index(name))
            probe = bst.run_precision(
                model,
                initial,
                data,
                spec["precision"],
                0,
                1,
                None,
                **loss_kw,
                adam_fused=spec["fused"],
            )
            first = probe["median_step_seconds"]
            if first > screen_factor * plain["median_step_seconds"]:
                probe.update(
                    config=spec,
                    screened_out=True,
                    note=(
                        f"first step {first:.2f} s > {screen_factor:g} x plain median "
                        f"{plain['median_step_seconds']:.2f} s: timed steps skipped"
                    ),
                )
                results[name] = probe
                logger.info("srda_train: %s screened out (%s)", name, probe["note"])
                continue
            res = bst.run_precision(
                model,
                initial,
                data,
                spec["precision"],
                0,
                steps,
                cand_deadline,
                **loss_kw,
                adam_fused=spec["fused"],
            )
            res["warmup_step_seconds"] = [first]
            res["warmup_steps"] = 1
            res.update(config=spec, screened_out=False)
            results[name] = res
            logger.info("srda_train: %s %.3f images/s", name, res["images_per_second"])
        model.to(memory_format=torch.contiguous_format)

    flops = train_flops_per_image(model, objective_for(settings, model), patch)
    measured = {k: r for k, r in results.items() if "images_per_second" in r}
    best = max(measured, key=lambda k: measured[k]["images_per_second"]) if measured else None
    plain_ips = plain["images_per_second"]
    tuned_ips = measured[best]["images_per_second"] if best else None
    left_out = sorted({TUNED_CANDIDATES[n]["precision"] for n in candidates} & set(skip_precisions))
    if best and left_out:
        tuned_note = (
            f"best {TUNED_CANDIDATES[best]['precision']} candidate: "
            f"{', '.join(left_out)} candidates skipped"
        )
    elif best:
        tuned_note = "best candidate of all precisions"
    else:
        tuned_note = "no tuned candidate measured"
    out = {
        "method": "srda",
        "dataset_settings_from": work.dataset,
        "size": settings["size"],
        "diag_depth": joint["diag_depth"],
        "attention_at": joint["attention_at"],
        "batch": batch,
        "patch_hr": patch,
        "patch_lr": patch // SCALE,
        "parameters": {
            "sr_net": bst.count_parameters(model.sr_net),
            "diag_net": bst.count_parameters(model.diag_net),
            "total": bst.count_parameters(model),
        },
        "train_flops_per_image": flops,
        "plain": plain,
        "candidates": results,
        "tuned_best": best,
        "tuned_note": tuned_note,
        "skipped_precisions": skip_precisions,
        "imgs_per_s_plain": plain_ips,
        "imgs_per_s_tuned": tuned_ips,
        "speedup": tuned_ips / plain_ips if tuned_ips else None,
        "plain_gflops": flops * plain_ips / 1e9,
        "tuned_gflops": flops * tuned_ips / 1e9 if tuned_ips else None,
        "fused_adam_available": _fused_adam_available(),
        "screen_factor": screen_factor,
    }
    del model, initial
    gc.collect()
    return out


def _fused_adam_available() -> bool:
    try:
        torch.optim.Adam([nn.Parameter(torch.zeros(1))], fused=True).step()
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


# --------------------------------------------------------------------------------------------
# Every method


def _train_one(
    work: Workload, settings: dict[str, Any], model: nn.Module, deadline: float | None
) -> dict[str, Any]:
    objective = objective_for(settings, model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=settings["train"]["lr"])
    batch, patch = work.batch, work.patch
    data = batch_of(batch, patch)
    model.train()

    def step() -> None:  # the trainer's own step, in fp32
        train_step(model, objective, data, optimizer, params, torch.device("cpu"), "fp32")

    with bst.deterministic(True):
        label = f"{settings['name']} train"
        res = time_steps(step, batch, work.warmup, work.steps, deadline, label)
        res["flops_per_image"] = train_flops_per_image(model, objective, patch)
    return res


def _infer_one(
    work: Workload, sr_net: nn.Module, name: str, batch: int, lr_size: int, deadline: float | None
) -> dict[str, Any]:
    x = batch_of(batch, lr_size * SCALE, seed=3)["lr"]
    sr_net.eval()

    def step() -> None:
        with torch.inference_mode():
            sr_net(x)

    res = time_steps(step, batch, work.warmup, work.steps, deadline, f"{name} infer")
    res["flops_per_image"] = infer_flops_per_image(sr_net, lr_size)
    return res


def bench_methods(
    work: Workload,
    methods: Sequence[str],
    infer_batch: int,
    infer_lr: int,
    deadline: float | None,
    reuse_srda: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Training and inference images/s (and FLOPs per image) of every method.

    ``reuse_srda``: the ``srda_plain_vs_tuned`` result; its plain run is srda's training row
    (same model, batch, patch and optimiser), so it is not measured twice.
    """
    rows: dict[str, Any] = {}
    for i, name in enumerate(methods):
        left = len(methods) - i
        t0 = time.perf_counter()
        settings = work.settings(name)
        torch.manual_seed(0)
        model = build(settings)
        sr_net = sr_network(model)
        row: dict[str, Any] = {
            "arch": settings["arch"],
            "size": settings["size"],
            "sr_parameters": bst.count_parameters(sr_net),
            "diag_parameters": bst.count_parameters(getattr(model, "diag_net", None)),
            "joint": hasattr(model, "sr_net") and model.diag_net is not None,
        }
        logger.info(
            "methods: %s (%d of %d), %s size, %s SR parameters",
            name,
            i + 1,
            len(methods),
            row["size"],
            f"{row['sr_parameters']:,}",
        )
        mine = split_deadline(deadline, left)
        half = split_deadline(mine, 2)
        if not row["sr_parameters"]:
            row["train"] = None
            row["train_note"] = "no trainable parameters (not trained)"
        elif name == "srda" and reuse_srda is not None:
            plain = reuse_srda["plain"]
            row["train"] = {
                "items_per_second": plain["images_per_second"],
                "median_step_s": plain["median_step_seconds"],
                "timed_steps": plain["timed_steps"],
                "budget_cut": plain["budget_cut"],
                "flops_per_image": reuse_srda["train_flops_per_image"],
                "from": "srda_train section (plain fp32)",
            }
        else:
            row["train"] = _train_one(work, settings, model, half)
        row["infer"] = _infer_one(work, sr_net, name, infer_batch, infer_lr, mine)
        for kind in ("train", "infer"):
            r = row.get(kind)
            if r:
                r["gflops_achieved"] = r["flops_per_image"] * r["items_per_second"] / 1e9
        row["seconds"] = round(time.perf_counter() - t0, 3)
        rows[name] = row
        del model, sr_net
        gc.collect()
    return {
        "dataset_settings_from": work.dataset,
        "batch": work.batch,
        "patch_hr": work.patch,
        "infer_batch": infer_batch,
        "infer_lr": infer_lr,
        "precision": "fp32",
        "methods": rows,
    }


# --------------------------------------------------------------------------------------------
# The SR body


def body_gflops(work: Workload, deadline: float | None) -> dict[str, Any]:
    """GFLOP/s of SRDA's residual body (blocks + conv), forward and backward, fp32."""
    torch.manual_seed(0)
    sr_net = sr_network(build(work.settings("srda")))
    batch = work.batch
    body = sr_net.body
    body.train()
    g = torch.Generator().manual_seed(4)
    lr = work.patch // SCALE
    x = torch.randn(batch, sr_net.features, lr, lr, generator=g).requires_grad_(True)
    grad = torch.randn(batch, sr_net.features, lr, lr, generator=g)

    def step() -> None:
        body.zero_grad(set_to_none=True)
        x.grad = None
        body(x).backward(grad)

    flops = count_flops(step)
    res = time_steps(step, batch, work.warmup, work.steps, deadline, "srda body")
    res.update(
        features=sr_net.features,
        blocks=sr_net.blocks,
        batch=batch,
        lr_side=lr,
        flops_per_step=flops,
        gflops=flops / res["median_step_s"] / 1e9,
        what="residual blocks + conv after them, forward + backward (input and weight grads)",
    )
    return res
