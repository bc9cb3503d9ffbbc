"""Training: the config, fine-tuning strategies, the LightningModule, optimizers and schedulers, callbacks,
loaders, the feature and boundary caches, phases, and `fit`/`resume`.

Loaded only by commands that train (`import transferlab` and `transferlab --help` do not load it).
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "TrainConfig": ".config", "TrainResult": ".result", "fit": ".fit", "resume": ".fit", "train": ".api",
    "load_run": ".api",
    "parse_strategy": ".strategies", "apply_strategy": ".strategies", "count_parameters": ".strategies",
})
