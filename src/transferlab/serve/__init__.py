"""The web service: FastAPI app, micro-batcher, upload checks and the page. Never imports training."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "ServeConfig": ".config", "create_app": ".app", "MicroBatcher": ".batcher", "check_bind": ".app",
    "API_KEY_ENV": ".config",
})
