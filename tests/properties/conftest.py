"""Under the long hypothesis profile (`HYPOTHESIS_PROFILE=long`) the cluster properties run ten
times the examples: pytest-timeout's per-test limit (pyproject: 120 s) is lifted for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.testing.profiles import is_long

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if is_long():
        for item in items:
            if item.path.is_relative_to(HERE):
                item.add_marker(pytest.mark.timeout(0))
