"""Augmentation applied: Keras' `ImageDataGenerator` transforms (`data.augment.AugmentConfig`) on image tensors,
built on torchvision.transforms.v2 (see `data.augment` for the exact meanings)."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn
from torchvision.transforms import v2

from .augment import AugmentConfig

__all__ = ["KerasAffine", "BatchAugment", "pil_transforms"]


def _shifts(value: float, size: int, n: int, gen: torch.Generator | None) -> torch.Tensor:
    """Keras' shift rule for n images: < 1 a fraction of `size`; an int k >= 1 a choice in [0, k) with a random
    sign; a float >= 1 uniform pixels in [-r, r]."""
    if not value:
        return torch.zeros(n, dtype=torch.float64)
    if isinstance(value, int) and value >= 1:
        pixels = torch.randint(0, int(value), (n,), generator=gen).double()
        return pixels * torch.where(torch.rand(n, generator=gen) < 0.5, 1.0, -1.0).double()
    shift = torch.empty(n, dtype=torch.float64).uniform_(-float(value), float(value), generator=gen)
    return shift * size if value < 1 else shift


def _stack3(rows: list[list[torch.Tensor | float]], like: torch.Tensor) -> torch.Tensor:
    """[n, 3, 3] matrices from nested rows of per-image tensors and constants."""
    return torch.stack([torch.stack([v if torch.is_tensor(v) else torch.full_like(like, v) for v in row], -1)
                        for row in rows], -2)


class KerasAffine(v2.Transform):
    """Keras' `random_transform` geometry (rotation, shifts, shear, independent x/y zoom) on image tensors.

    Builds Keras' matrix exactly (`rotation @ shift @ shear @ zoom`, about the image centre) and resamples
    bilinearly (Keras' order=1) with Keras' fill modes. Other inputs (labels) pass through.
    """

    NAMES = ("theta", "tx", "ty", "shear", "zx", "zy")

    def __init__(self, config: AugmentConfig) -> None:
        super().__init__()
        self.config = config

    def sample_batch(self, n: int, h: int, w: int, gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Random parameters for n images under Keras' rules, as float64 tensors of length n."""
        c = self.config

        def uniform(r: float) -> torch.Tensor:
            if not r:
                return torch.zeros(n, dtype=torch.float64)
            return torch.empty(n, dtype=torch.float64).uniform_(-r, r, generator=gen)

        zlo, zhi = c.zoom_bounds
        zoom = (torch.ones(2, n, dtype=torch.float64) if (zlo, zhi) == (1.0, 1.0)
                else torch.empty(2, n, dtype=torch.float64).uniform_(zlo, zhi, generator=gen))
        return {"theta": uniform(float(c.rotation_range)), "tx": _shifts(c.height_shift_range, h, n, gen),
                "ty": _shifts(c.width_shift_range, w, n, gen), "shear": uniform(float(c.shear_range)),
                "zx": zoom[0], "zy": zoom[1]}

    def sample(self, h: int, w: int, gen: torch.Generator | None = None) -> dict[str, float]:
        """Random parameters for one image (see `sample_batch`)."""
        return {k: float(v[0]) for k, v in self.sample_batch(1, h, w, gen).items()}

    @staticmethod
    def matrices(params: dict[str, torch.Tensor], h: int, w: int) -> torch.Tensor:
        """Keras' `apply_affine_transform` matrices [n, 3, 3]: output (row, col, 1) -> input (row, col, 1)."""
        p = {k: torch.as_tensor(params[k], dtype=torch.float64).reshape(-1) for k in KerasAffine.NAMES}
        t, s = torch.deg2rad(p["theta"]), torch.deg2rad(p["shear"])
        z = torch.zeros_like(t)
        m = _stack3([[torch.cos(t), -torch.sin(t), 0.0], [torch.sin(t), torch.cos(t), 0.0], [0.0, 0.0, 1.0]], z)
        m = m @ _stack3([[1.0, 0.0, p["tx"]], [0.0, 1.0, p["ty"]], [0.0, 0.0, 1.0]], z)
        m = m @ _stack3([[1.0, -torch.sin(s), 0.0], [0.0, torch.cos(s), 0.0], [0.0, 0.0, 1.0]], z)
        m = m @ _stack3([[p["zx"], 0.0, 0.0], [0.0, p["zy"], 0.0], [0.0, 0.0, 1.0]], z)
        ox, oy = h / 2 - 0.5, w / 2 - 0.5  # Keras' transform_matrix_offset_center(matrix, h, w)
        to_centre = torch.tensor([[1, 0, ox], [0, 1, oy], [0, 0, 1]], dtype=torch.float64)
        from_centre = torch.tensor([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]], dtype=torch.float64)
        m = to_centre @ m @ from_centre
        # Keras builds the matrix in (x, y) order and swaps axes for (row, col) arrays: M' = P M P
        return m[:, [1, 0, 2]][:, :, [1, 0, 2]]

    @staticmethod
    def matrix(theta: float, tx: float, ty: float, shear: float, zx: float, zy: float, h: int, w: int) -> torch.Tensor:
        """Keras' `apply_affine_transform` matrix for one image: output (row, col, 1) -> input (row, col, 1)."""
        params = {"theta": theta, "tx": tx, "ty": ty, "shear": shear, "zx": zx, "zy": zy}
        return KerasAffine.matrices(params, h, w)[0]

    def apply(self, image: torch.Tensor, params: dict[str, float]) -> torch.Tensor:
        """Resamples a [C, H, W] float image with the transform `params`."""
        h, w = image.shape[-2:]
        m = self.matrix(**params, h=h, w=w)
        if self.config.fill_mode == "nearest":  # Keras' default: affine_grid + grid_sample (edge replication)
            out = torch.nn.functional.grid_sample(image[None].float(), _normalized_grid(m, h, w), mode="bilinear",
                                                  padding_mode="border", align_corners=True)[0]
        else:
            m32 = m.to(torch.float32)
            rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                        indexing="ij")
            src_r = m32[0, 0] * rows + m32[0, 1] * cols + m32[0, 2]
            src_c = m32[1, 0] * rows + m32[1, 1] * cols + m32[1, 2]
            out = _bilinear(image.float(), src_r, src_c, self.config.fill_mode, float(self.config.cval))
        return out.to(image.dtype)

    def apply_batch(self, images: torch.Tensor, params: dict[str, torch.Tensor],
                    hflip: torch.Tensor | None = None, vflip: torch.Tensor | None = None) -> torch.Tensor:
        """Resamples a [B, C, H, W] float batch, image i with parameters `params[...][i]`.

        For Keras' default fill mode this is one grid_sample for the whole batch, and the optional per-image
        flips (Keras flips after the affine transform) are folded into the same sampling grid for free.
        """
        b, _, h, w = images.shape
        flips = torch.ones(b, 3, dtype=torch.float64)
        if hflip is not None:
            flips[:, 0] = torch.where(hflip, -1.0, 1.0)
        if vflip is not None:
            flips[:, 1] = torch.where(vflip, -1.0, 1.0)
        if self.config.fill_mode != "nearest":
            one = {k: v.reshape(-1) for k, v in params.items()}
            out = torch.stack([self.apply(image, {k: float(v[i]) for k, v in one.items()})
                               for i, image in enumerate(images)])
            if hflip is not None:
                out = torch.where(hflip.to(out.device).view(b, 1, 1, 1), out.flip(-1), out)
            if vflip is not None:
                out = torch.where(vflip.to(out.device).view(b, 1, 1, 1), out.flip(-2), out)
            return out
        theta = (_normalized_theta(self.matrices(params, h, w), h, w) * flips[:, None, :].float()).to(images.device)
        return torch.nn.functional.grid_sample(images, _grid(theta, h, w), mode="bilinear", padding_mode="border",
                                               align_corners=True)

    def forward(self, *inputs: Any) -> Any:
        sample = inputs if len(inputs) > 1 else inputs[0]
        image = sample[0] if isinstance(sample, tuple) else sample
        out = self.apply(image, self.sample(*image.shape[-2:]))
        return (out, *sample[1:]) if isinstance(sample, tuple) else out


def _normalized_theta(m: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """affine_grid's [..., 2, 3] theta (normalized x, y) for the pixel-space (row, col) matrices `m`."""
    sx, sy = 2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)
    # normalized (x, y, 1) -> pixel (row, col, 1), then m, then pixel (row, col) -> normalized (x, y)
    to_pixel = torch.tensor([[0, 1 / sy, 1 / sy], [1 / sx, 0, 1 / sx], [0, 0, 1]], dtype=torch.float64)
    to_norm = torch.tensor([[0, sx, -1], [sy, 0, -1]], dtype=torch.float64)
    return (to_norm @ m @ to_pixel).to(torch.float32)


@functools.lru_cache(maxsize=8)
def _base_grid(h: int, w: int, device: torch.device) -> torch.Tensor:
    """affine_grid's identity grid as [1, H*W, 3] homogeneous (x, y, 1) points."""
    base = torch.nn.functional.affine_grid(torch.eye(2, 3)[None], [1, 1, h, w], align_corners=True).view(1, -1, 2)
    return torch.cat([base, torch.ones(1, h * w, 1)], -1).to(device)


def _grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """affine_grid(theta, [B, 1, h, w], align_corners=True) as one matmul against a cached identity grid."""
    return torch.matmul(_base_grid(h, w, theta.device), theta.transpose(1, 2)).view(theta.shape[0], h, w, 2)


def _normalized_grid(m: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """grid_sample's grid for the pixel-space (row, col) matrix `m`."""
    return torch.nn.functional.affine_grid(_normalized_theta(m, h, w)[None], [1, 1, h, w], align_corners=True)


def _fold(index: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Maps integer sample positions outside [0, n) into the image, as scipy.ndimage's modes do."""
    if mode == "reflect":  # half-sample symmetric: d c b a | a b c d | d c b a
        index = torch.remainder(index, 2 * n)
        return torch.where(index >= n, 2 * n - 1 - index, index)
    return index.clamp(0, n - 1)


def _bilinear(image: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, mode: str, cval: float) -> torch.Tensor:
    """Order-1 spline sampling of a [C, H, W] image at (rows, cols), with scipy.ndimage's edge modes."""
    h, w = image.shape[-2:]
    if mode == "wrap":  # scipy 'wrap': coordinates wrap with period n - 1 (first and last points overlap)
        rows = torch.where((rows < 0) | (rows > h - 1), torch.remainder(rows, max(h - 1, 1)), rows)
        cols = torch.where((cols < 0) | (cols > w - 1), torch.remainder(cols, max(w - 1, 1)), cols)
    r0, c0 = torch.floor(rows), torch.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0, c0 = r0.long(), c0.long()
    out = torch.zeros((image.shape[0], *rows.shape), dtype=image.dtype)
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            rr, cc = _fold(r0 + dr, h, mode), _fold(c0 + dc, w, mode)
            out += image[:, rr, cc] * (wr * wc)
    if mode == "constant":  # every point beyond the edge pixels is cval, with no interpolation
        eps = 1e-6
        outside = (rows < -eps) | (rows > h - 1 + eps) | (cols < -eps) | (cols > w - 1 + eps)
        out = torch.where(outside[None], torch.tensor(cval, dtype=image.dtype), out)
    return out


class BatchAugment:
    """The float-stage augmentation and normalisation of a whole uint8 batch, drawn per image.

    One `grid_sample` call resamples the batch with a Keras matrix per image; flips, brightness, contrast and
    noise are drawn per image and applied as batch tensor operations; then normalisation with the model's mean
    and std, then random erasing. Runs on the batch's device: training applies it after the uint8 batch has
    reached the accelerator (a GPU augments for free, and a quarter of the bytes cross the bus); and
    `train_transform` applies it to batches of one, so both paths share one implementation.

    Example:
        >>> from transferlab.data.augment import PRESETS
        >>> aug = BatchAugment(PRESETS["course"], (0.5,) * 3, (0.5,) * 3)
        >>> aug(torch.zeros(4, 3, 32, 32, dtype=torch.uint8)).shape
        torch.Size([4, 3, 32, 32])
    """

    def __init__(self, config: AugmentConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.config = config
        self.affine = KerasAffine(config) if config.has_affine else None
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.erase = v2.RandomErasing(p=float(config.random_erasing)) if config.random_erasing else None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] uint8 (or float in [0, 1]) -> augmented, normalised float32."""
        c = self.config
        b, _, h, w = images.shape
        dev = images.device
        x = images.to(torch.float32)
        mean, std = self.mean.to(dev), self.std.to(dev)
        # normalisation commutes with resampling and flips; the colour steps clamp to [0, 1] and must see pixels
        early = not (c.brightness_range or c.contrast_range or c.noise_std)
        x.mul_((1 / 255 if images.dtype == torch.uint8 else 1.0) / (std if early else 1.0))
        if early:
            x.sub_(mean / std)
        hflip = torch.rand(b) < 0.5 if c.horizontal_flip else None
        vflip = torch.rand(b) < 0.5 if c.vertical_flip else None
        if self.affine is not None:
            x = self.affine.apply_batch(x, self.affine.sample_batch(b, h, w), hflip, vflip)
        else:
            if hflip is not None:
                x = torch.where(hflip.to(dev).view(b, 1, 1, 1), x.flip(-1), x)
            if vflip is not None:
                x = torch.where(vflip.to(dev).view(b, 1, 1, 1), x.flip(-2), x)
        if c.brightness_range:  # PIL's ImageEnhance.Brightness: scale the pixel values
            x = (x * torch.empty(b, 1, 1, 1, device=dev).uniform_(*c.brightness_range)).clamp_(0, 1)
        if c.contrast_range:  # torchvision's adjust_contrast: blend with the mean grey level of each image
            factor = torch.empty(b, 1, 1, 1, device=dev).uniform_(*c.contrast_range)
            grey = (0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).mean(dim=(-2, -1)).view(b, 1, 1, 1)
            x = (factor * x + (1 - factor) * grey).clamp_(0, 1)
        if c.noise_std:
            x = (x + torch.randn_like(x) * float(c.noise_std)).clamp_(0, 1)
        if not early:
            x = (x - mean) / std
        if self.erase is not None:
            x = torch.stack([self.erase(image) for image in x])
        return x


def pil_transforms(config: AugmentConfig) -> list[nn.Module]:
    """The augmentation steps that run per image before the batch stage (on PIL/uint8 images)."""
    return [v2.TrivialAugmentWide()] if config.trivial_augment else []
