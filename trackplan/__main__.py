"""``python -m trackplan``."""

from trackplan.cli import main

main()
