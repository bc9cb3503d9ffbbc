"""`from transferlab.applications import ResNet50`, as `from keras.applications import ResNet50`: the Keras
Applications facade, whose owner is `transferlab.models.keras`."""

from .models.keras import *  # noqa: F403
from .models.keras import __all__  # noqa: F401
