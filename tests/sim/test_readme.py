"""The README's sim-engine example runs as printed."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent.parent / "README.md"


def test_the_readme_simworld_example_runs_verbatim() -> None:
    text = README.read_text()
    section = text[text.index("## Two engines") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None and "SimWorld" in block.group(1)
    exec(compile(block.group(1), "README.md (sim example)", "exec"), {})
