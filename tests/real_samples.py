"""The four real InterHand2.6M samples (shared/data/interhand26m_samples beside the checkout).

Set DIRNET_IH26M_SAMPLES to use another folder. Tests that need them are skipped when the folder
is missing, except under CI (CI=true), where a missing fixture must fail rather than vanish.
"""

import os
from pathlib import Path

import pytest

SAMPLES = Path(os.environ.get(
    "DIRNET_IH26M_SAMPLES",
    Path(__file__).resolve().parents[2] / "shared" / "data" / "interhand26m_samples",
))
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir() and not os.environ.get("CI"),
    reason=f"real InterHand2.6M samples not found at {SAMPLES} (set DIRNET_IH26M_SAMPLES)",
)
