"""Data-parallel training over several processes with PyTorch's DistributedDataParallel.

One process per GPU (or, for tests, per CPU with ``gloo``), launched inside one job by
``torchrun --nproc_per_node N -m srda.cli run-method ...`` (or by ``srda-bench run-method
--gpus N``, which starts torchrun itself when N > 1 GPUs are visible). torchrun sets ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_from_env`
joins the process group (``nccl`` on CUDA, ``gloo`` on CPU).

Semantics (the trainer relies on them):

* **Global batch.** The config's ``batch_size`` is the global batch of one optimiser step, the
  same as in a single-process run. :class:`~srda.train.data.PatchSampler` draws batch k as a
  pure function of ``(seed, k)``; every process draws that same global batch and keeps its
  contiguous slice of ``batch_size / world_size`` patches (:func:`shard_batch`; the batch must
  divide evenly). DDP averages the gradients over processes, so for a loss that is a mean over
  the batch the update equals the single-process one up to floating-point rounding: the
  number of GPUs changes the speed, not the training trajectory (tested to 1e-5 on CPU).
* **Learning rate.** Unchanged and never rescaled: the global batch is unchanged.
* **BatchNorm.** Networks with batch norm (the diagnosis ResNet of SRDA's joint model) compute
  batch statistics per process, over its ``batch_size / world_size`` patches, unless they are
  synchronised: :func:`wrap` converts them to ``SyncBatchNorm`` on CUDA (statistics over the
  global batch, as in a single-process run). SyncBatchNorm needs GPUs (``nccl``); with ``gloo``
  on CPU the statistics stay per process, and the running averages are those of rank 0 (DDP
  broadcasts its buffers at every forward pass). Networks without batch norm (the SR networks)
  are unaffected.
* **Side effects.** Only rank 0 validates, writes ``train_log.csv`` and checkpoints, and shows
  progress; logged losses are averaged over processes. Every process resumes from the same
  ``last.pt``.
* **Early stop.** With ``until_plateau`` rank 0 decides after each validation whether the
  patience has run out and broadcasts it (:func:`decided_on_main`); every process stops at the
  same step, and a resumed run reads the same plateau count from ``last.pt`` on every process.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)

#: Environment variables torchrun sets for every process it starts.
TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` processes (1: not parallel)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world_size > 1


def env_context() -> DistContext:
    """Rank, world size and local rank from torchrun's environment (single process without)."""

    def read(name: str, default: int) -> int:
        value = os.environ.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError as exc:
            raise ValueError(f"environment variable {name}={value!r} is not an integer") from exc

    world = read("WORLD_SIZE", 1)
    rank = read("RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} and WORLD_SIZE={world} do not describe a process group")
    return DistContext(rank=rank, world_size=world, local_rank=read("LOCAL_RANK", 0))


def launched_by_torchrun() -> bool:
    """True inside a process that torchrun (or a similar launcher) started with WORLD_SIZE > 1."""
    return env_context().parallel


def current() -> DistContext:
    """The context of the initialised default process group (single process when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )
    return DistContext()


def processes_for_gpus(gpus: int | None) -> int:
    """Processes to train with when a job was given ``gpus`` GPUs: one per visible GPU.

    1 (no data parallel) for 0, 1 or None GPUs, or when CUDA is not available; when fewer GPUs
    are visible than given, as many processes as are visible (with a warning).
    """
    if not gpus or gpus <= 1:
        return 1
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    processes = max(1, min(gpus, visible))
    if visible < gpus:
        logger.warning(
            "given %d GPUs but %d visible: training in %d process(es)", gpus, visible, processes
        )
    return processes


def relaunch_with_torchrun(processes: int, cli_args: list[str]) -> int:
    """Run ``srda-bench <cli_args>`` as ``processes`` data-parallel processes under torchrun
    (on this node, rendezvous on a free local port); returns torchrun's exit code."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "srda.cli",
        *cli_args,
    ]
    logger.info("data parallel over %d processes: %s", processes, shlex.join(cmd))
    return subprocess.call(cmd)


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def rank_device(device: torch.device, ctx: DistContext) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` when ``device`` is CUDA, else ``device``."""
    device = torch.device(device)
    if device.type != "cuda" or not ctx.parallel:
        return device
    count = torch.cuda.device_count()
    if ctx.local_rank >= count:
        raise RuntimeError(
            f"process with LOCAL_RANK {ctx.local_rank} has no GPU of its own: {count} visible "
            "(start at most one process per GPU: torchrun --nproc_per_node <= GPUs)"
        )
    return torch.device("cuda", ctx.local_rank)


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group torchrun describes (no-op for a single process).

    ``device`` is this process's device (see :func:`rank_device`); it picks the backend. Returns
    the context; call :func:`shutdown` when done.
    """
    ctx = env_context()
    if not ctx.parallel:
        return ctx
    if dist.is_initialized():
        return current()
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE={ctx.world_size} but {', '.join(missing)} unset: start the processes "
            "with torchrun"
        )
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = backend_for(device)
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size)
    logger.info(
        "process %d of %d (local rank %d) on %s, backend %s",
        ctx.rank,
        ctx.world_size,
        ctx.local_rank,
        device,
        backend,
    )
    return ctx


def shutdown() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op for a single process)."""
    if ctx.parallel:
        dist.barrier()


def check_batch(batch_size: int, ctx: DistContext) -> int:
    """Per-process batch of a global ``batch_size``; a ValueError when it does not divide."""
    if batch_size % ctx.world_size:
        raise ValueError(
            f"batch_size {batch_size} (the global batch) does not split evenly over "
            f"{ctx.world_size} processes: choose a batch size divisible by the process count"
        )
    return batch_size // ctx.world_size


def shard_batch(batch: dict[str, torch.Tensor], ctx: DistContext) -> dict[str, torch.Tensor]:
    """This process's contiguous slice of a global batch (every tensor split on dim 0)."""
    if not ctx.parallel:
        return batch
    out = {}
    for key, value in batch.items():
        per = check_batch(len(value), ctx)
        out[key] = value[ctx.rank * per : (ctx.rank + 1) * per]
    return out


def wrap(
    model: nn.Module,
    device: torch.device,
    ctx: DistContext,
    sync_batchnorm: bool | None = None,
) -> nn.Module:
    """``model`` in DistributedDataParallel (the model itself for a single process).

    ``sync_batchnorm`` None: convert batch norm layers to SyncBatchNorm on CUDA only (it does
    not run on CPU). The conversion reuses the same parameter objects, so optimisers built on
    ``model.parameters()`` before or after stay valid. Call the returned module in the
    objective (DDP synchronises gradients through its forward); validate, save and load with
    :func:`unwrap` (no collective calls, plain state-dict keys).
    """
    if not ctx.parallel:
        return model
    device = torch.device(device)
    if sync_batchnorm is None:
        sync_batchnorm = device.type == "cuda"
    if sync_batchnorm:
        if device.type != "cuda":
            raise ValueError("SyncBatchNorm needs CUDA devices (nccl); got " + str(device))
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif ctx.is_main and any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()
    ):
        logger.warning(
            "batch norm statistics are per process (over its share of the global batch): "
            "SyncBatchNorm needs CUDA devices"
        )
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def mean_over_ranks(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    """Each value averaged over the processes (the values themselves for a single process)."""
    if not ctx.parallel or not values:
        return list(values)
    # gloo reduces CPU tensors, nccl CUDA tensors: the backend's own device.
    where = torch.device(device) if backend_for(device) == "nccl" else torch.device("cpu")
    t = torch.tensor(values, dtype=torch.float64, device=where)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return (t / ctx.world_size).tolist()


def decided_on_main(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every process (the flag itself for a single process).

    For decisions only rank 0 can take because only it validates (an early stop on a plateau):
    every process must call this at the same step, and all then act alike, so none is left
    waiting in a collective call the others have stopped making.
    """
    if not ctx.parallel:
        return bool(flag)
    where = torch.device(device) if backend_for(device) == "nccl" else torch.device("cpu")
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=where)
    dist.broadcast(t, src=0)
    return bool(t.item())
