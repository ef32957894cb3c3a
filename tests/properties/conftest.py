"""Per-test time limits of the properties (pytest-timeout's default, pyproject: 120 s):

- under the long hypothesis profile (`HYPOTHESIS_PROFILE=long`) the cluster properties run ten
  times the examples: the limit is lifted for them;
- a sim-engine property (`..._sim`) runs its 200 examples in seconds, but when one fails Hypothesis
  shrinks it for up to five minutes — cut short, the report would be a timeout instead of the shrunk
  example and its reproduction: they get `SIM_TIMEOUT`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.testing.profiles import is_long

HERE = Path(__file__).resolve().parent
SIM_TIMEOUT = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(HERE):
            continue
        if is_long():
            item.add_marker(pytest.mark.timeout(0))
        elif item.name.endswith("_sim"):
            item.add_marker(pytest.mark.timeout(SIM_TIMEOUT))
