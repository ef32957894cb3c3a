"""tasksim's benchmarks: `python bench/run.py` measures every figure next to its floor, in one run.

The benchmark code drives real processes from the outside (the `tasksim up` coordinator, bare
`python -m simnode` nodes, a constant HTTP server) the way a user or a load client would; it never
reaches into a running process, and it never asserts a timing (tests assert behaviour; figures live
in `bench/results.*`).
"""
