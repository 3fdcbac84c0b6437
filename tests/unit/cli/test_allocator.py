"""The CLI's allocator setting (:func:`dmpreserve.cli.tune_allocator`): applied on glibc, the user's own kept, and
the results bit for bit the same with and without it."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from dmpreserve.cli import tune_allocator

GLIBC = platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_applied_on_glibc(monkeypatch) -> None:
    for name in ("MMAP_THRESHOLD", "TRIM_THRESHOLD", "TOP_PAD"):
        monkeypatch.delenv(f"MALLOC_{name}_", raising=False)
    assert tune_allocator() is True


@pytest.mark.parametrize("name", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"])
def test_a_users_setting_is_kept(monkeypatch, name: str) -> None:
    monkeypatch.setenv(name, "131072")
    assert tune_allocator() is False


LAUNCH = """
import sys, numpy as np
import dmpreserve.cli as cli
if sys.argv[1] == "off":
    cli.tune_allocator = lambda: False
else:
    assert cli.tune_allocator()
from dmpreserve.stats.model import build_model
from dmpreserve.stats.teststat import tmu_tilde
from dmpreserve.stats.toys import background_datasets, background_theta
ws = {
    "channels": [{"name": "c", "samples": [
        {"name": "sig", "data": [0.5, 1.0, 2.0, 1.0],
         "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
        {"name": "bkg", "data": [20.0, 10.0, 5.0, 2.0], "modifiers": [
            {"name": "b", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
            {"name": "stat_c", "type": "staterror", "data": [2.0, 1.0, 1.0, 0.5]}]}]}],
    "observations": [{"name": "c", "data": [22, 9, 6, 3]}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}
model = build_model(ws, None)
theta0 = background_theta(model)
sets = background_datasets(model, theta0, 3000, 7)  # a few MB per array: glibc's defaults would mmap them
t, _ = tmu_tilde(model, sets, np.full(3000, 2.0), which=np.arange(3000))
sys.stdout.write(np.asarray(t, float).tobytes().hex())
"""


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_results_are_bit_identical_with_and_without() -> None:
    """The setting moves where freed memory goes, never a number: 3000 toy fits agree bit for bit."""
    out = {
        v: subprocess.run([sys.executable, "-c", LAUNCH, v], capture_output=True, text=True, check=True).stdout
        for v in ("on", "off")
    }
    assert out["on"] and out["on"] == out["off"]
