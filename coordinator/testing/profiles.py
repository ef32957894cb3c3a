"""Hypothesis settings profiles for properties that talk to a real cluster.

- `tasksim-ci`: derandomized (the same examples on every run), no example database, no deadline
  (a single example waits out request timeouts), the blob to reproduce a failure printed;
- `tasksim-dev`: random examples, the local database keeps failures, no deadline;
- `tasksim-long`: as dev, with `LONG_FACTOR` times the examples and twice the stateful steps.

A cluster property asks for its examples through `cluster_settings(max_examples=...)`, so that the
profile scales them (a pure property keeps Hypothesis's own default). `load_profile()` picks the
profile from `HYPOTHESIS_PROFILE` (`ci`, `dev`, `long` or the full names), else `tasksim-ci` when
`CI` is set, else `tasksim-dev`. Registering profiles changes nothing until one is loaded.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

CI = "tasksim-ci"
DEV = "tasksim-dev"
LONG = "tasksim-long"
LONG_FACTOR = 10
_ALIASES = {"ci": CI, "dev": DEV, "long": LONG}
_SLOW_OK = [HealthCheck.too_slow]


def register_profiles() -> None:
    settings.register_profile(
        CI,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=_SLOW_OK,
    )
    settings.register_profile(DEV, deadline=None, suppress_health_check=_SLOW_OK)
    settings.register_profile(LONG, deadline=None, suppress_health_check=_SLOW_OK)


def profile_from_env(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    name = env.get("HYPOTHESIS_PROFILE", "").strip()
    if name:
        return _ALIASES.get(name, name)
    return CI if env.get("CI", "").lower() in ("1", "true", "yes") else DEV


def load_profile(name: str | None = None) -> str:
    """Register the profiles and load `name` (or the one the environment asks for)."""
    register_profiles()
    chosen = _ALIASES.get(name, name) if name else profile_from_env()
    settings.load_profile(chosen)
    return chosen


def current_profile() -> str:
    return settings.get_current_profile_name()


def is_long() -> bool:
    return current_profile() == LONG


def cluster_settings(
    max_examples: int, *, stateful_step_count: int | None = None, **kwargs: Any
) -> settings:
    """Settings for a property against a cluster: `max_examples` (× LONG_FACTOR under the long
    profile), no deadline, slowness tolerated; the rest from the loaded profile."""
    factor = LONG_FACTOR if is_long() else 1
    extra: dict[str, Any] = dict(kwargs)
    if stateful_step_count is not None:
        extra["stateful_step_count"] = stateful_step_count * (2 if is_long() else 1)
    return settings(
        max_examples=max_examples * factor,
        deadline=None,
        suppress_health_check=[*_SLOW_OK, *extra.pop("suppress_health_check", [])],
        **extra,
    )
