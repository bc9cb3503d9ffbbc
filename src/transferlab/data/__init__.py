"""Data: image folders, splits, indexes and streams, image decoding, preprocessing and augmentation, caches.
Names load lazily: `data.images` (decoding) needs no torch."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "PRESETS": ".augment", "AugmentConfig": ".augment", "KerasAffine": ".augment", "resolve_augment": ".augment",
    "ImageListDataset": ".datasets", "DataSplits": ".folder", "Sample": ".folder", "load_image_folder": ".sources",
    "is_image_file": ".images", "load_rgb": ".images", "Preprocessing": ".transforms", "eval_transform": ".transforms",
    "train_transform": ".transforms", "sample_image": ".demo", "make_toy_images": ".demo", "write_digits": ".demo",
    "get_dataset": ".download",
})
