"""`python -m coordinator` is the `tasksim` command."""

from coordinator.cli import main

main()
