"""Data: image folders, splits, image reading, preprocessing and augmentation."""

from .augment import PRESETS, AugmentConfig, KerasAffine, resolve_augment
from .datasets import ImageListDataset
from .folder import DataSplits, Sample, load_image_folder
from .images import is_image_file, load_rgb
from .transforms import Preprocessing, eval_transform, train_transform

__all__ = ["PRESETS", "AugmentConfig", "DataSplits", "ImageListDataset", "KerasAffine",
           "Preprocessing", "Sample", "eval_transform", "is_image_file", "load_image_folder", "load_rgb",
           "resolve_augment", "train_transform"]
