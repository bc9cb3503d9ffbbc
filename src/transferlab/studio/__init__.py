"""The studio: a local web app to add images, check them, train, inspect mistakes and try a model, with no code
(`transferlab studio PROJECT`). Projects are plain folders that the command line and notebooks read too."""

from .project import Project

__all__ = ["Project"]
