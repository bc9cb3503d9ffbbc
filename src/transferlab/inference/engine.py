"""How a model runs: the engine (dtype, channels_last, device) and the fastest correct one on this machine."""

from __future__ import annotations

import copy
from contextlib import nullcontext

import torch
from torch import nn

__all__ = ["Engine", "best_engine", "cpu_processes", "cpu_supports_bf16", "fold_batch_norm", "run_model"]


class Engine(dict):
    """How features are computed: {'dtype': 'bfloat16'|'float32', 'channels_last': bool, 'device': str,
    'fold_bn': bool (BatchNorm folded into the convolution before it, see `fold_batch_norm`)}."""


def cpu_supports_bf16() -> bool:
    """True when the CPU runs bf16 matrix work natively (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def best_engine(device: str = "cpu") -> Engine:
    """The fastest correct engine here: bf16 autocast + channels_last where bf16 is native, else fp32.

    Measured on 2 Sapphire-Rapids-class cores (docs/benchmarks.md): bf16 + channels_last is the fastest
    eager path; the features stay within 1% cosine distance of eager fp32 (tested).
    """
    if device.startswith("cuda"):
        return Engine(dtype="bfloat16" if torch.cuda.is_bf16_supported() else "float16", channels_last=True,
                      device=device, fold_bn=True)
    return Engine(dtype="bfloat16" if cpu_supports_bf16() else "float32", channels_last=True, device=device,
                  fold_bn=True)


def run_model(model: nn.Module, batch: torch.Tensor, engine: Engine) -> torch.Tensor:
    """`model`'s outputs for an input batch on `engine`: moved to its device, channels-last for images where the
    engine says so, under inference mode and the engine's autocast dtype (none for float32).

    Example:
        >>> run_model(nn.Linear(3, 2), torch.ones(4, 3), Engine(dtype="float32", device="cpu")).shape
        torch.Size([4, 2])
    """
    x = batch.to(engine.get("device", "cpu"))
    if engine.get("channels_last") and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = getattr(torch, engine.get("dtype", "float32"))
    autocast = torch.autocast(x.device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()
    with torch.inference_mode(), autocast:
        return model(x)


def cpu_processes(device: str | torch.device, num_workers: int, count: int, batch_size: int, world: int = 1) -> int:
    """How many processes should each load their own batches and run the model on them, single-threaded, instead
    of this process running it on all its threads while `num_workers` processes only decode (0: the latter).

    On a CPU the former is faster: no thread waits for another at every layer, and decoding never preempts the
    network (extraction of 4,000 photos 1.36x with bf16, 1.29x with fp32 on 2 cores, docs/benchmarks.md). Used
    when loading processes are allowed at all (`num_workers` > 0), outside DDP (`world` > 1: each rank is a process
    already), for more than one batch, and for up to 8 threads (`torch.get_num_threads()`): one process per thread.
    Past 8 (unmeasured, and each process holds a batch's activations) this process runs the model as before. Each
    process keeps the single thread a loading process starts with: a forked child that starts a team of OpenMP
    threads after its parent used one hangs (GNU libgomp).

    Example:
        >>> cpu_processes("cuda", num_workers=4, count=1000, batch_size=64)
        0
    """
    threads = torch.get_num_threads()
    if torch.device(device).type != "cpu" or num_workers <= 0 or world > 1 or count <= batch_size or threads > 8:
        return 0
    return max(1, threads)


class _ActOnly(nn.Module):
    """What is left of timm's BatchNormAct2d once its normalisation is folded into the convolution before it."""

    def __init__(self, bn: nn.Module) -> None:
        super().__init__()
        self.drop, self.act = bn.drop, bn.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(x))


def fold_batch_norm(module: nn.Module, check: torch.Tensor | None = None) -> nn.Module:
    """An eval-mode copy of `module` with each BatchNorm that directly follows a convolution (its sibling,
    registered right after it: timm's conv_stem/bn1, conv_pw/bn1, conv1/bn1, ...) folded into that convolution's
    weights and bias; `module` itself when it has no BatchNorm. One memory pass less per layer for inference
    (Lite0, bf16: 1.16x on 2 cores, docs/benchmarks.md). Registration order is a convention, not a guarantee:
    given `check` (a few inputs), the copy's fp32 outputs on them are compared with the module's, and `module`
    itself is returned when they differ by more than 1e-3 of the output's scale (`extract_features` checks so).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
        >>> x = torch.randn(1, 3, 8, 8)
        >>> bool(torch.allclose(fold_batch_norm(net)(x), net(x), atol=1e-5))
        True
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if not any(isinstance(m, nn.BatchNorm2d) for m in module.modules()):
        return module  # nothing to fold (a ViT, say): no copy of its weights
    folded = copy.deepcopy(module).eval()
    for parent in list(folded.modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats \
                    and bn.num_features == conv.out_channels:
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                has_act = hasattr(bn, "act") and hasattr(bn, "drop")
                setattr(parent, bn_name, _ActOnly(bn) if has_act else nn.Identity())
    if check is not None:
        with torch.inference_mode():
            a, b = module(check.float()), folded(check.float())
        if not bool((a - b).abs().max() <= 1e-3 * a.abs().max().clamp_min(1e-6)):
            return module
    return folded
