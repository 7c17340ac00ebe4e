"""The training loop every notebook uses: small enough to read in one sitting.

    history = fit(model, train_loader, loss_fn, steps=600, val_loader=val_loader,
                  metrics={"iou": iou}, eval_every=100)

Training is counted in optimisation steps, not epochs, so that the same budget means the same thing
for datasets of any size. On CUDA the loop uses mixed precision (bf16 where the GPU has it, else
fp16 with loss scaling) and channels_last memory layout; on the CPU it runs plain fp32. Under
``torchrun`` with a DistributedDataParallel model and a DistributedSampler (``utils.distributed``) it also
works unchanged: only rank 0 prints and shows a bar.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from utils.config import get_device

Metric = Callable[[torch.Tensor, torch.Tensor], float]


@dataclass
class History:
    """Losses and validation metrics recorded during `fit`, ready for plotting."""

    train_steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def last(self, name: str) -> float:
        """Most recent value of a validation metric (or 'loss' for the training loss)."""
        return self.train_loss[-1] if name == "loss" else self.val[name][-1]

    def as_dict(self) -> dict:
        """Plain dict, e.g. for json.dump."""
        return asdict(self)


def main_output(output: torch.Tensor | tuple | list) -> torch.Tensor:
    """The prediction to score: U2Net returns (fused, side1, ..., side6), other models one tensor."""
    return output[0] if isinstance(output, (tuple, list)) else output


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel or DataParallel wrapper (the model itself otherwise)."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


def is_main_process() -> bool:
    """True outside distributed training, and on rank 0 inside it."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that support it (no loss scaling needed), fp16 on older GPUs, None on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision in `dtype` on `device`; plain full precision when dtype is None."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _to_device(batch: Iterable[torch.Tensor], device: torch.device, channels_last: bool) -> list[torch.Tensor]:
    # non_blocking overlaps the copy with compute when the loader uses pinned memory.
    moved = [t.to(device, non_blocking=True) for t in batch]
    if channels_last:
        moved = [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in moved]
    return moved


def _endless(loader: Iterable) -> Iterator:
    """Cycle through the loader, telling a DistributedSampler which epoch it is so shuffles differ."""
    epoch = 0
    while True:
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    metrics: dict[str, Metric] | None = None,
    loss_fn: Callable | None = None,
    device: torch.device | None = None,
) -> dict[str, float]:
    """Average each metric (and the loss, if given) over a whole loader, weighting by batch size."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    for batch in loader:
        inputs, targets = _to_device(batch[:2], device, channels_last=False)
        output = model(inputs)
        n = inputs.shape[0]
        scores = {name: fn(main_output(output).float(), targets) for name, fn in (metrics or {}).items()}
        if loss_fn is not None:
            scores["loss"] = float(loss_fn(output, targets))
        for name, value in scores.items():
            totals[name] = totals.get(name, 0.0) + float(value) * n
        count += n
    model.train(was_training)
    if count == 0:
        raise ValueError("evaluate() got an empty loader")
    return {name: total / count for name, total in totals.items()}


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: torch.device | None = None) -> tuple[torch.Tensor, ...]:
    """Run the model over a loader; return (inputs, predictions, targets, *extras) on the CPU."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    columns: list[list[torch.Tensor]] = []
    for batch in loader:
        prediction = main_output(model(batch[0].to(device))).float().cpu()
        row = [batch[0], prediction, *batch[1:]]
        columns = columns or [[] for _ in row]
        for column, tensor in zip(columns, row):
            column.append(tensor.cpu())
    model.train(was_training)
    return tuple(torch.cat(column) for column in columns)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    loss_fn: Callable,
    *,
    steps: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    val_loader: Iterable | None = None,
    metrics: dict[str, Metric] | None = None,
    eval_every: int | None = None,
    device: torch.device | None = None,
    amp: bool | None = None,
    description: str = "training",
    progress: bool = True,
) -> History:
    """Train `model` for `steps` optimisation steps; evaluate every `eval_every` steps and at the end.

    `loss_fn(output, target)` gets the model's raw output (a tuple for U2Net). Mixed precision and
    channels_last switch on by themselves on CUDA (`amp=False` turns both off). Returns a `History`.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    device = device or get_device()
    use_cuda_tricks = device.type == "cuda" and amp is not False
    model.to(device)
    if use_cuda_tricks:
        model.to(memory_format=torch.channels_last)
    dtype = autocast_dtype(device) if use_cuda_tricks else None
    # fp16 gradients can underflow to zero; the scaler multiplies the loss up first. bf16 has fp32's range.
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    optimizer = optimizer or torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    eval_every = eval_every or steps
    history = History()
    show = progress and is_main_process()
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=steps, desc=description, disable=not show, leave=True)
    batches = _endless(train_loader)
    for step in range(1, steps + 1):
        inputs, targets = _to_device(next(batches)[:2], device, channels_last=use_cuda_tricks)
        with autocast_context(device, dtype):
            output = model(inputs)
        # The loss runs outside autocast: binary cross-entropy is not safe in half precision.
        loss = loss_fn(output, targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        history.train_steps.append(step)
        history.train_loss.append(loss.item())
        bar.update(1)
        if val_loader is not None and (step % eval_every == 0 or step == steps):
            # Through DDP's wrapper a forward may broadcast buffers to all ranks; the wrapped module runs none,
            # so ranks may validate on their own (or, like rank 0 alone, at all) without deadlocking.
            scores = evaluate(unwrap(model), val_loader, metrics, loss_fn, device)
            history.val_steps.append(step)
            for name, value in scores.items():
                history.val.setdefault(name, []).append(value)
            bar.set_postfix({"loss": f"{loss.item():.4f}", **{k: f"{v:.4f}" for k, v in scores.items() if k != "loss"}})
        elif step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    history.seconds = time.perf_counter() - start
    return history


def cosine_adam(
    model: nn.Module, steps: int, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999)
) -> torch.optim.Optimizer:
    """Adam whose learning rate follows a cosine from `lr` down to 0 over `steps` calls to `step()`, for `fit`."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=betas)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    # fit() only calls optimizer.step(); a post-step hook moves the schedule along with it.
    optimizer.register_step_post_hook(lambda *_: schedule.step())
    return optimizer


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, **extra) -> Path:
    """Save weights (and optimizer state, extra info) atomically: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": unwrap(model).state_dict(), "extra": extra}
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)
    return path


def load_checkpoint(
    path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, strict: bool = True
) -> dict:
    """Load a checkpoint written by `save_checkpoint` (weights_only=True: no arbitrary code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "model" not in payload:
        raise ValueError(f"{path} is not a checkpoint written by save_checkpoint (no 'model' entry)")
    unwrap(model).load_state_dict(payload["model"], strict=strict)
    if optimizer is not None and "optimizer" in payload:
        optimizer.load_state_dict(payload["optimizer"])
    return payload.get("extra", {})
