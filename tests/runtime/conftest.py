"""Shared fixtures for the runtime tests."""

from __future__ import annotations

import pytest

from fake_bundle import make_fake_bundle  # tests/runtime is on sys.path (pytest rootdir-less "prepend" import)


@pytest.fixture(scope="session")
def fake_bundle(tmp_path_factory):
    """A verified 128x128 bundle whose "model" marks dark pixels as holes (see fake_bundle.py)."""
    pytest.importorskip("onnx")
    return make_fake_bundle(tmp_path_factory.mktemp("fake_bundle"))


@pytest.fixture
def make_bundle(tmp_path):
    """Factory for variants: ``make_bundle(height=64, width=96, batch=2, overlap_px=16, ...)``."""
    pytest.importorskip("onnx")
    counter = iter(range(1000))

    def make(**kwargs):
        return make_fake_bundle(tmp_path / f"bundle{next(counter)}", **kwargs)

    return make
