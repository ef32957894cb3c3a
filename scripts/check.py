#!/usr/bin/env python3
"""The whole test suite, as CI runs it: generated code fresh, lint, format, types, tests.

Usage: python scripts/check.py [pytest args...]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

STEPS = [
    ("protobuf code fresh", [PY, "scripts/gen_protos.py", "--check"]),
    ("ruff check", [PY, "-m", "ruff", "check", "."]),
    ("ruff format --check", [PY, "-m", "ruff", "format", "--check", "."]),
    ("mypy", [PY, "-m", "mypy"]),
]


def main() -> int:
    for name, cmd in STEPS:
        print(f"==> {name}", flush=True)
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            print(f"FAILED: {name}", flush=True)
            return 1
    print("==> pytest", flush=True)
    return subprocess.run([PY, "-m", "pytest", *sys.argv[1:]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
