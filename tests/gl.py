"""Rendering tests need an OpenGL context (EGL). Without one they are skipped on a developer's
machine, but under CI (CI=true) a missing context fails: rendering must be proven there."""

import os

import pytest


def no_gl(exc: Exception) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"no OpenGL context for rendering under CI: {exc}")
    pytest.skip(f"no OpenGL context for rendering: {exc}")
