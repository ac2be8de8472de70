"""The reference fixtures computed by the official code (shared/reference beside the checkout).

Set DIRNET_REFERENCE to use another folder. Tests that need a fixture are skipped when it is
missing, except under CI (CI=true), where a missing fixture must fail rather than vanish.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REFERENCE = Path(os.environ.get(
    "DIRNET_REFERENCE", Path(__file__).resolve().parents[2] / "shared" / "reference",
))


def fixture_dir(name: str) -> Path:
    """`REFERENCE/name`, or skip (fail under CI) when it is missing."""
    folder = REFERENCE / name
    if not (folder / "outputs.npz").is_file():
        message = f"reference fixture {name} not found at {folder} (set DIRNET_REFERENCE)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


def make_state_dict(generator: Path, out: Path, *args: str) -> Path:
    """Run a fixture's make_state_dict.py (it verifies checksums and SHA-256 itself)."""
    subprocess.run([sys.executable, str(generator), *args, str(out)], check=True,
                   capture_output=True, text=True)
    return out
