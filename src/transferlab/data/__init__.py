"""Data: image folders, splits, indexes and streams, image decoding, preprocessing and augmentation, caches.
Names load lazily: `data.images` (decoding) and `data.geometry` (the preprocessing) need no torch."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "PRESETS": ".augment", "AugmentConfig": ".augment", "KerasAffine": ".augment_ops", "resolve_augment": ".augment",
    "ImageListDataset": ".datasets", "DataSplits": ".folder", "Sample": ".folder", "load_image_folder": ".sources",
    "open_source": ".sources", "is_image_file": ".images", "load_rgb": ".images", "Preprocessing": ".geometry",
    "preprocessing_from_model": ".transforms", "eval_transform": ".transforms", "train_transform": ".transforms",
    "sample_image": ".demo", "make_toy_images": ".demo", "write_digits": ".demo", "get_dataset": ".download",
})
