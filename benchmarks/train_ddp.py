"""Train a course model with DistributedDataParallel: the same `fit` loop, one process per GPU (or CPU slot).

    torchrun --standalone --nproc_per_node=4 benchmarks/train_ddp.py --model u2netp --steps 500 --batch-size 8
    torchrun --standalone --nproc_per_node=2 benchmarks/train_ddp.py --model tiny --steps 20   # CPU, gloo
    python benchmarks/train_ddp.py --model unet --steps 50                                     # one process

`--batch-size` is per process, so the global batch is batch_size x nproc_per_node. Rank 0 prints, writes
`--json` (images/s over all ranks) and saves `--checkpoint`; `--state-dir` makes every rank save its final
weights, which is how the tests check that all ranks end with the same model.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a file (torchrun benchmarks/train_ddp.py), not as a module
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Dataset, TensorDataset  # noqa: E402

from benchmarks.common import machine_info, write_json  # noqa: E402
from utils.config import seed_everything  # noqa: E402
from utils.train.distributed import cleanup, distributed_loader, init_distributed, unwrap, wrap_ddp  # noqa: E402
from utils.losses import BCEDiceLoss, deep_supervision_loss  # noqa: E402
from utils.metrics import iou  # noqa: E402
from utils.train import fit, save_checkpoint  # noqa: E402

MODEL_CHOICES = ("tiny", "unet", "u2netp", "u2net", "vgg16unet")


class TinySegmenter(nn.Module):
    """Input normalisation, two convs and a sigmoid; no BatchNorm, so N ranks x batch B is exactly one batch of N x B.

    BatchNorm normalises each rank's batch with that rank's own statistics, so a BN model trained on 2 x 4
    images differs (legitimately) from one trained on 8; a model without BN has no such term. The fixed
    mean/std buffers (as in VGG16UNet) still make DDP broadcast buffers at every forward, as it does for BN models.
    """

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), 0.25), persistent=False)
        self.layers = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities (N, 1, H, W) for images (N, 3, H, W) in [0, 1]."""
        return torch.sigmoid(self.layers((x - self.mean) / self.std))


def build_model(name: str, base_channels: int = 16) -> nn.Module:
    """A course model with a 1-channel probability output (U2Net variants return their 7 side maps)."""
    from utils.models import U2Net, U2NetP, UNet, VGG16UNet

    builders = {
        "tiny": TinySegmenter,
        "unet": lambda: UNet(3, 1, base_channels=base_channels, final_activation="sigmoid"),
        "u2netp": U2NetP,
        "u2net": U2Net,
        "vgg16unet": lambda: VGG16UNet(pretrained=False),
    }
    return builders[name]()


def random_segmentation_data(n: int, image_size: int, seed: int) -> TensorDataset:
    """Random images whose target marks the pixels brighter than average: cheap, deterministic, learnable."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, image_size, image_size, generator=generator)
    targets = (images.mean(dim=1, keepdim=True) > 0.5).float()
    return TensorDataset(images, targets)


def build_dataset(kind: str, n: int, image_size: int, seed: int) -> Dataset:
    """'random' tensors (instant) or the course's synthetic people pictures (realistic, a few ms each)."""
    if kind == "random":
        return random_segmentation_data(n, image_size, seed)
    from utils.data import SyntheticPeopleDataset

    return SyntheticPeopleDataset(n, image_size=image_size, seed=seed, cache=True)


def train(args: argparse.Namespace) -> tuple[nn.Module, dict[str, Any]]:
    """Train as `args` say, in this process's place in the process group; return the model and a summary."""
    context = init_distributed(timeout_s=args.timeout, cpu=args.cpu)
    seed_everything(args.seed)  # same initial weights everywhere (DDP also broadcasts rank 0's at wrapping)
    model = wrap_ddp(build_model(args.model, args.base_channels), context, sync_batchnorm=args.sync_batchnorm)
    dataset = build_dataset(args.data, args.n_train, args.image_size, args.seed)
    loader = distributed_loader(dataset, args.batch_size, shuffle=not args.no_shuffle, seed=args.seed,
                                num_workers=args.workers, pin_memory=context.device.type == "cuda")
    # Only rank 0 validates (it is the one that reports), on the whole held-out set; the others carry on
    # and wait for it at the next gradient all-reduce.
    val_loader = (DataLoader(build_dataset(args.data, args.n_val, args.image_size, args.seed + 1), args.batch_size)
                  if args.n_val and context.is_main else None)
    loss_fn = deep_supervision_loss if args.model in ("u2net", "u2netp") else BCEDiceLoss()
    history = fit(model, loader, loss_fn, steps=args.steps, lr=args.lr, device=context.device,
                  amp=False if args.fp32 else None,  # None: mixed precision where the device runs it by default (CUDA)
                  val_loader=val_loader, metrics={"iou": iou}, eval_every=args.eval_every,
                  description=f"{args.model} x{context.world_size}", progress=not args.quiet)
    global_batch = args.batch_size * context.world_size
    summary = {
        "model": args.model, "world_size": context.world_size, "batch_per_rank": args.batch_size,
        "global_batch": global_batch, "steps": args.steps, "image_size": args.image_size, "seconds": history.seconds,
        # All ranks step together, so rank 0's wall time is the job's: global images / seconds.
        "images_per_s": global_batch * args.steps / history.seconds,
        "final_loss_rank0": history.train_loss[-1], "device": str(context.device),
        "val": {name: values[-1] for name, values in history.val.items()},
    }
    if args.state_dir:
        path = Path(args.state_dir) / f"rank{context.rank}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(unwrap(model).state_dict(), path)
    if context.is_main:
        if args.checkpoint:
            save_checkpoint(args.checkpoint, model, **{k: v for k, v in summary.items() if k != "device"})
        if args.json_path:
            write_json(args.json_path, {"summary": summary, "machine": machine_info(context.device),
                                        "train_loss": history.train_loss})
        print(f"{args.model}: {context.world_size} process(es) x batch {args.batch_size}, {args.steps} steps in "
              f"{history.seconds:.1f} s = {summary['images_per_s']:.1f} images/s, "
              f"final loss {history.train_loss[-1]:.4f}"
              + "".join(f", val {name} {value:.4f}" for name, value in summary["val"].items()))
    cleanup()
    return model, summary


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of the example."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODEL_CHOICES, default="tiny")
    parser.add_argument("--steps", type=int, default=20, help="optimisation steps (every rank does all of them)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per process and step")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=64, help="training images (shared out between ranks)")
    parser.add_argument("--n-val", type=int, default=0, help="held-out images, scored by rank 0 (0: none)")
    parser.add_argument("--eval-every", type=int, default=None, help="steps between validations (default: at the end)")
    parser.add_argument("--data", choices=("random", "people"), default="random")
    parser.add_argument("--base-channels", type=int, default=16, help="width of the course UNet (--model unet)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes per rank")
    parser.add_argument("--no-shuffle", action="store_true", help="read the data in order")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU (gloo) even where there are GPUs")
    parser.add_argument("--fp32", action="store_true", help="no mixed precision / channels_last on CUDA")
    parser.add_argument("--sync-batchnorm", action="store_true", help="BatchNorm over the global batch (CUDA)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a stuck collective fails")
    parser.add_argument("--checkpoint", default=None, help="rank 0 saves the trained model here")
    parser.add_argument("--state-dir", default=None, help="every rank saves its final weights as DIR/rank{R}.pt")
    parser.add_argument("--json", dest="json_path", default=None, help="rank 0 writes a timing summary here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    args = build_parser().parse_args(argv)
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
