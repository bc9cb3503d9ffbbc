"""transferlab: turn a folder of images into an accurate image classifier by transfer learning.

Example:
    >>> import transferlab
    >>> result = transferlab.fit(transferlab.TrainConfig(data="cats_and_dogs_filtered"))  # doctest: +SKIP
    >>> transferlab.predict(result.run_dir, ["my_cat.jpg"])  # doctest: +SKIP
"""

__version__ = "0.1.0"

from .config import TrainConfig  # noqa: E402
from .models import create_model, list_models  # noqa: E402
from .predict import Predictor, predict  # noqa: E402
from .train import TrainResult, fit, resume  # noqa: E402

__all__ = ["TrainConfig", "TrainResult", "Predictor", "create_model", "fit", "list_models", "predict", "resume",
           "__version__"]
