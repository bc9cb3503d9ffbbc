"""Training: the config, fine-tuning strategies, the LightningModule, optimizers and schedulers, callbacks,
loaders, the feature and boundary caches, phases, and `fit`/`resume`.

Loaded only by commands that train (`import transferlab` and `transferlab --help` do not load it).
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "TrainConfig": ".config", "TrainResult": ".fit", "fit": ".fit", "resume": ".fit", "train": ".fit",
    "load_run": ".fit",
    "parse_strategy": ".strategies", "apply_strategy": ".strategies", "count_parameters": ".strategies",
})
