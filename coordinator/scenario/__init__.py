"""YAML failure scenarios: load and validate (loader, schema), run against a real cluster
(process, runner), check (expect, checks) and report (report). `tasksim run` is cli.py."""
