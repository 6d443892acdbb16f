"""Data-parallel training (srda.train.distributed): two gloo processes on CPU, started by torchrun
through the CLI, train like one process with the same global batch; each process trains on its
own slice of that batch; the helpers keep their contracts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_tiny_sr_dataset
from torch import nn

from srda.config import method_job_settings, resolve
from srda.run import build_model
from srda.train import distributed
from srda.train.distributed import DistContext
from srda.train.losses import sr_objective
from srda.train.trainer import TrainSettings, train

CLASSES = ["CN", "MCI", "AD"]
STEPS = 3
GLOBAL_BATCH = 4


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_sr_dataset(
        tmp_path_factory.mktemp("ddp_data"),
        lambda rng, xx, yy: (
            0.5 + 0.4 * np.sin(6 * xx + rng.random() * 6) * np.cos((4 + rng.random()) * yy)
        ),
        seed=3,
    )


def _job_settings(base_config: dict, method: str) -> dict:
    config = {**base_config, "preset": "smoke"}
    # Validation only at the end: best.pt is the last step in both runs.
    # fp32: the 1e-5 comparison is about the gradient averaging, not bf16 rounding (auto picks
    # bf16 on CPUs with AMX / AVX512-BF16)
    config["method_defaults"] = {
        "train": {"steps": STEPS, "val_every": STEPS, "lr": 1e-3, "precision": "fp32"}
    }
    config["datasets"]["adni-mri"]["patch"] = 16
    config["datasets"]["adni-mri"]["batch_size"] = GLOBAL_BATCH
    return method_job_settings(resolve(config), "adni-mri", method)


def _cli_args(settings: dict, data: Path, out: Path) -> list[str]:
    return [
        "run-method",
        "--settings",
        json.dumps(settings),
        "--data",
        str(data),
        "--scale",
        "4",
        "--seed",
        "0",
        "--out",
        str(out),
        "--gpus",
        "0",
        "--threads",
        "1",
    ]


def test_two_gloo_processes_train_like_one_with_the_same_global_batch(
    base_config, tiny_data, tmp_path
):
    settings = _job_settings(base_config, "srda_base")  # no batch norm
    env = {k: v for k, v in os.environ.items() if k not in distributed.TORCHRUN_VARS} | {
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SLURM_JOB_ID", None)
    single = subprocess.Popen(
        [sys.executable, "-m", "srda.cli", *_cli_args(settings, tiny_data, tmp_path / "one")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    parallel = subprocess.Popen(
        [
            *torchrun,
            "--nproc_per_node=2",
            "-m",
            "srda.cli",
            *_cli_args(settings, tiny_data, tmp_path / "two"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out1, err1 = single.communicate(timeout=300)
    out2, err2 = parallel.communicate(timeout=300)
    assert single.returncode == 0, err1
    assert parallel.returncode == 0, err2
    assert "process 0 of 2" in err2 and "backend gloo" in err2

    one = torch.load(tmp_path / "one/train/checkpoints/last.pt", weights_only=True)
    two = torch.load(tmp_path / "two/train/checkpoints/last.pt", weights_only=True)
    assert one["step"] == two["step"] == STEPS
    assert one["model"].keys() == two["model"].keys()  # plain keys: no DDP "module." prefix
    for name, p1 in one["model"].items():
        p2 = two["model"][name]
        assert torch.allclose(p1, p2, rtol=0, atol=1e-5), (name, (p1 - p2).abs().max())
    # The comparison means something only if training moved the weights well beyond 1e-5.
    torch.manual_seed(0)  # as run_method does before building the model
    start = build_model(settings, 4, len(CLASSES)).state_dict()
    moved = max(float((one["model"][k] - v).abs().max()) for k, v in start.items())
    assert moved > 1e-3
    log1 = pd.read_csv(tmp_path / "one/train/train_log.csv")
    log2 = pd.read_csv(tmp_path / "two/train/train_log.csv")
    assert list(log2["step"]) == list(range(1, STEPS + 1))  # rank 0 alone wrote the log
    np.testing.assert_allclose(log2["loss"], log1["loss"], rtol=1e-5)  # global-batch losses

    run1 = json.loads((tmp_path / "one/run.json").read_text())
    run2 = json.loads((tmp_path / "two/run.json").read_text())
    assert run1["training"]["processes"] == 1 and run2["training"]["processes"] == 2
    assert run2["device"] == "cpu" and run2["slurm_job_id"] is None
    assert abs(run1["psnr"] - run2["psnr"]) < 1e-3
    sr1, sr2 = np.load(tmp_path / "one/test.npy"), np.load(tmp_path / "two/test.npy")
    np.testing.assert_allclose(sr1, sr2, atol=1e-4)


def test_run_method_given_several_gpus_starts_one_process_per_gpu(
    base_config, tiny_data, tmp_path, monkeypatch
):
    """`srda-bench run-method --gpus 2` relaunches itself under torchrun (here with the GPU
    count faked: the two processes find no CUDA and train on the CPU with gloo)."""
    from srda import cli

    monkeypatch.setattr(distributed, "processes_for_gpus", lambda gpus: gpus)
    for name in distributed.TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    args = _cli_args(_job_settings(base_config, "srda_base"), tiny_data, tmp_path / "out")
    args[args.index("--gpus") + 1] = "2"
    assert cli.main(args) == 0
    run = json.loads((tmp_path / "out/run.json").read_text())
    assert run["training"]["processes"] == 2 and run["device"] == "cpu"


class _TinySR(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(1, 16, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.body(x))


def _recorded_batches(data: Path, out: Path, ctx: DistContext, monkeypatch) -> list[np.ndarray]:
    """The HR patches each step of ``train`` trained on, as the process ``ctx`` (faked: the
    process group calls are stubbed, the sharding is the trainer's own)."""
    monkeypatch.setattr(distributed, "current", lambda: ctx)
    monkeypatch.setattr(distributed, "wrap", lambda model, device, ctx: model)
    monkeypatch.setattr(distributed, "mean_over_ranks", lambda values, ctx, device: values)
    seen: list[np.ndarray] = []
    objective = sr_objective("l1")

    def recording(model: nn.Module, batch: dict) -> tuple:
        seen.append(batch["hr"].numpy().copy())
        return objective(model, batch)

    torch.manual_seed(0)
    settings = TrainSettings(
        steps=2, batch_size=GLOBAL_BATCH, patch=16, val_every=0, precision="fp32"
    )
    train(_TinySR(), recording, None, data, 4, settings, out, torch.device("cpu"))
    return seen


def test_each_process_trains_on_its_slice_of_the_global_batch(tiny_data, tmp_path, monkeypatch):
    whole = _recorded_batches(tiny_data, tmp_path / "whole", DistContext(), monkeypatch)
    first = _recorded_batches(tiny_data, tmp_path / "r0", DistContext(0, 2, 0), monkeypatch)
    second = _recorded_batches(tiny_data, tmp_path / "r1", DistContext(1, 2, 1), monkeypatch)
    assert [b.shape[0] for b in whole] == [GLOBAL_BATCH] * 2
    for full, a, b in zip(whole, first, second, strict=True):
        assert a.shape[0] == b.shape[0] == GLOBAL_BATCH // 2
        np.testing.assert_array_equal(np.concatenate([a, b]), full)
    # Only rank 0 writes the log and the checkpoints.
    assert (tmp_path / "r0/train_log.csv").exists() and (
        tmp_path / "r0/checkpoints/last.pt"
    ).exists()
    assert not (tmp_path / "r1/train_log.csv").exists()
    assert not (tmp_path / "r1/checkpoints/last.pt").exists()


def test_global_batch_must_split_evenly():
    assert distributed.check_batch(8, DistContext(0, 4, 0)) == 2
    with pytest.raises(ValueError, match="batch_size 6 .* 4 processes"):
        distributed.check_batch(6, DistContext(0, 4, 0))


def test_shard_batch_slices_every_tensor_on_the_first_axis():
    batch = {"lr": torch.arange(6).view(6, 1), "label": torch.arange(6)}
    assert distributed.shard_batch(batch, DistContext()) is batch
    part = distributed.shard_batch(batch, DistContext(2, 3, 0))
    assert part["lr"].flatten().tolist() == [4, 5] and part["label"].tolist() == [4, 5]


def test_context_comes_from_torchrun_variables(monkeypatch):
    for name in distributed.TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    assert distributed.env_context() == DistContext() and not distributed.launched_by_torchrun()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.env_context() == DistContext(3, 4, 1)
    assert distributed.launched_by_torchrun()
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK=4"):
        distributed.env_context()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="not an integer"):
        distributed.env_context()


def test_backend_and_devices():
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for(torch.device("cuda", 1)) == "nccl"
    cpu = torch.device("cpu")
    assert distributed.rank_device(cpu, DistContext(1, 2, 1)) == cpu
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert distributed.wrap(model, cpu, DistContext()) is model  # single process: untouched
    with pytest.raises(ValueError, match="SyncBatchNorm needs CUDA"):
        distributed.wrap(model, cpu, DistContext(0, 2, 0), sync_batchnorm=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fallback")
def test_gpus_without_cuda_mean_one_process():
    assert [distributed.processes_for_gpus(g) for g in (None, 0, 1, 4)] == [1, 1, 1, 1]


# --------------------------------------------------------------------------------------------
# Early stop on a plateau: rank 0 decides, every process stops at the same step

# Validations every 2 steps (cap 20): with patience 2, 6 and 8 bring no new best after 4's.
PLATEAU_CURVE = [20.0, 21.0, 20.5, 21.0, 22.0, 22.0, 22.0, 22.0, 22.0, 22.0]
PLATEAU_STOP = 8


class _ScriptedPSNR:
    """The k-th validation scores ``scores[k]``."""

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.calls = list(scores), 0

    def __call__(self, *args, **kwargs) -> float:
        self.calls += 1
        return self.scores[self.calls - 1]


def _not_on_this_rank(*args, **kwargs) -> float:
    raise AssertionError("only rank 0 validates")


def _plateau_settings() -> TrainSettings:
    return TrainSettings(
        steps=20,
        batch_size=GLOBAL_BATCH,
        patch=16,
        val_every=2,
        until_plateau=True,
        patience=2,
        precision="fp32",
    )


def test_a_process_other_than_rank_0_stops_when_rank_0_says_so(tiny_data, tmp_path, monkeypatch):
    """Rank 1 (faked) never validates: it asks rank 0 at every validation step and stops at
    the step rank 0 announced (here its 4th validation, step 8)."""
    from srda.train import trainer

    asked: list[bool] = []

    def rank0_says(flag: bool, ctx: DistContext, device) -> bool:
        assert ctx.rank == 1 and flag is False  # rank 1's own plateau count never moves
        asked.append(True)
        return len(asked) == PLATEAU_STOP // 2

    monkeypatch.setattr(distributed, "current", lambda: DistContext(1, 2, 1))
    monkeypatch.setattr(distributed, "wrap", lambda model, device, ctx: model)
    monkeypatch.setattr(distributed, "mean_over_ranks", lambda values, ctx, device: values)
    monkeypatch.setattr(distributed, "decided_on_main", rank0_says)
    monkeypatch.setattr(trainer, "validate", _not_on_this_rank)
    torch.manual_seed(0)
    summary = train(
        _TinySR(), sr_objective("l1"), None, tiny_data, 4, _plateau_settings(), tmp_path, "cpu"
    )
    assert len(asked) == PLATEAU_STOP // 2
    assert summary["steps"] == PLATEAU_STOP and summary["stopped_at_step"] == PLATEAU_STOP
    assert not (tmp_path / "checkpoints" / "last.pt").exists()  # rank 0 writes it


def _plateau_worker(rank: int, world: int, init_file: str, data: str, out: str) -> None:
    """One gloo process of the two-process plateau test (started with the spawn method)."""
    import torch.distributed as dist

    from srda.train import trainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        trainer.validate = _ScriptedPSNR(PLATEAU_CURVE) if rank == 0 else _not_on_this_rank
        torch.manual_seed(0)
        summary = train(
            _TinySR(),
            sr_objective("l1"),
            None,
            Path(data),
            4,
            _plateau_settings(),
            Path(out) / "train",
            torch.device("cpu"),
        )
        keys = ("steps", "stopped_early", "stopped_at_step", "processes")
        (Path(out) / f"rank{rank}.json").write_text(json.dumps({k: summary[k] for k in keys}))
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_stop_together_on_a_plateau(tiny_data, tmp_path):
    """Without the broadcast rank 1 would wait in step 9's gradient all-reduce for ever."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    args = (str(tmp_path / "init"), str(tiny_data), str(tmp_path))
    procs = [ctx.Process(target=_plateau_worker, args=(r, 2, *args)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    hung = [p.pid for p in procs if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    assert not hung, f"processes {hung} did not finish"
    assert [p.exitcode for p in procs] == [0, 0]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for summary in ranks:
        assert summary == {
            "steps": PLATEAU_STOP,
            "stopped_early": True,
            "stopped_at_step": PLATEAU_STOP,
            "processes": 2,
        }
    log = pd.read_csv(tmp_path / "train" / "train_log.csv")
    assert log["step"].tolist() == list(range(1, PLATEAU_STOP + 1))
    last = torch.load(tmp_path / "train" / "checkpoints" / "last.pt", weights_only=True)
    assert last["step"] == PLATEAU_STOP and last["best_step"] == 4
