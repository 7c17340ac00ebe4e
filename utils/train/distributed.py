"""Data-parallel training on several GPUs (or CPU processes) with `torchrun`, in four calls.

    context = init_distributed()                       # reads torchrun's RANK, WORLD_SIZE, LOCAL_RANK
    model = wrap_ddp(model, context)                    # DistributedDataParallel on this process's device
    loader = distributed_loader(dataset, batch_size=8)  # each rank sees its own shard of every epoch
    history = fit(model, loader, loss_fn, steps=1000, device=context.device)   # utils.train.fit
    cleanup()

Run it with `torchrun --nproc_per_node=N script.py`; started as a plain `python script.py` the same code
trains in one process (world size 1) without any process group. NCCL is used between GPUs, gloo on the CPU.
`batch_size` is per process: the global batch is batch_size * world_size.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from utils.config import get_device
from utils.train.devices import channels_last_default


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel or DataParallel wrapper (the model itself otherwise)."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


def is_main_process() -> bool:
    """True outside distributed training, and on rank 0 inside it."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its rank among `world_size` processes and the device it trains on."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints, plots and saves."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) set the environment variables init_process_group reads."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def init_distributed(backend: str | None = None, timeout_s: float = 600.0, cpu: bool = False) -> DistributedContext:
    """Join the process group torchrun describes (NCCL on CUDA, else gloo); a single process without torchrun.

    cpu=True trains on the CPU (with gloo) even where a GPU is present.
    """
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        device = torch.device("cpu") if cpu else get_device()
        return DistributedContext(rank=0, local_rank=0, world_size=1, device=device)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available() and not cpu:
        # Each process owns one GPU; without this every rank would allocate on cuda:0.
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        # A finite timeout turns a rank that died or never arrived into an error instead of a hang.
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistributedContext(dist.get_rank(), local_rank, dist.get_world_size(), device)


def wrap_ddp(model: nn.Module, context: DistributedContext, sync_batchnorm: bool = False) -> nn.Module:
    """Move `model` to the context's device and wrap it in DistributedDataParallel (unchanged in one process).

    sync_batchnorm=True computes BatchNorm statistics over the global batch (CUDA only): worth it when the
    per-GPU batch is small, since BN then normalises with noisy per-rank statistics.
    """
    model = model.to(context.device)
    if channels_last_default(context.device):
        # fit() switches models to channels_last; doing it before wrapping keeps DDP's gradient buckets
        # in the same layout as the gradients (changing parameters after wrapping is not allowed).
        model = model.to(memory_format=torch.channels_last)
    if not context.distributed:
        return model
    if sync_batchnorm:
        if context.device.type != "cuda":
            raise ValueError("SyncBatchNorm needs CUDA; on the CPU leave sync_batchnorm=False")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def distributed_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = True,
    **loader_options,
) -> DataLoader:
    """A DataLoader whose DistributedSampler gives this rank 1/world_size of each epoch (`batch_size` per rank).

    fit() calls sampler.set_epoch every epoch, so each epoch is shuffled differently yet identically on all
    ranks. drop_last=True keeps every rank's batches full, so the averaged gradient weights all examples equally.
    """
    if dist.is_available() and dist.is_initialized():
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    else:
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed, drop_last=drop_last)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **loader_options)


def cleanup() -> None:
    """Leave the process group (a no-op outside distributed training); call once at the end of a script."""
    if dist.is_available() and dist.is_initialized():
        # Wait for every rank first: rank 0 may still be evaluating or saving while the others are done, and a rank
        # that tears its side of the group down under a peer's feet can abort at exit (seen once with gloo: SIGABRT,
        # "terminate called without an active exception").
        dist.barrier()
        dist.destroy_process_group()
