"""`python -m transferlab` runs the command line."""

from .cli import main

main()
