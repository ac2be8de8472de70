"""Rendering tests need an OpenGL context (EGL). Without one they are skipped on a developer's
machine, but under CI (CI=true) a missing context fails: rendering must be proven there."""

import os

import pytest


def no_gl(exc: Exception) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"no OpenGL context for rendering under CI: {exc}")
    pytest.skip(f"no OpenGL context for rendering: {exc}")


def open_renderer(width: int, height: int):
    """A dir_net Renderer, or no_gl() when no OpenGL context can be made."""
    from dir_net.render.renderer import Renderer, RenderUnavailableError

    try:
        return Renderer(width, height)
    except RenderUnavailableError as exc:  # only when EGL / OpenGL is genuinely missing
        no_gl(exc)
