"""Random small pyhf workspaces with every modifier the fast engine supports (tests of dmpreserve.stats)."""

from __future__ import annotations

import numpy as np

BINS = 5


def random_workspace(seed: int, *, staterror: bool = True, histosys: bool = True, free_factor: bool = True):
    """Workspace + signal patch (see the module docstring)."""
    rng = np.random.default_rng(seed)
    channels = []
    for ch in ("zeta", "alpha"):
        samples = []
        for s, name in enumerate(("bkg_a", "bkg_b", "bkg_c")):
            data = rng.uniform(2.0, 30.0, BINS)
            mods = [{"name": f"norm_{name}", "type": "normsys", "data": {"hi": 1 + 0.1 * (s + 1), "lo": 0.85}}]
            if staterror and name != "bkg_c":
                data[0] = 0.0  # zero yield of every staterror sample: pyhf fixes the gamma
                unc = rng.uniform(0.05, 0.3, BINS) * data
                unc[1] = 0.0 if name == "bkg_a" else unc[1]
                if name == "bkg_b":
                    unc[1] = 0.0  # bin 1: no uncertainty at all
                mods.append({"name": f"staterror_{ch}", "type": "staterror", "data": unc.tolist()})
            if histosys and name != "bkg_b":
                hi = data * rng.uniform(1.05, 1.3, BINS)
                lo = data * rng.uniform(0.6, 0.97, BINS)
                shared = "norm_bkg_a" if name == "bkg_a" else "shape_c"  # bkg_a: shared with its normsys
                mods.append(
                    {"name": shared, "type": "histosys", "data": {"hi_data": hi.tolist(), "lo_data": lo.tolist()}}
                )
            if free_factor and name == "bkg_b":
                mods.append({"name": "rate_b", "type": "normfactor", "data": None})
            samples.append({"name": name, "data": data.tolist(), "modifiers": mods})
        channels.append({"name": ch, "samples": samples})
    total = [np.sum([s["data"] for s in ch["samples"]], axis=0) for ch in channels]
    ws = {
        "channels": channels,
        "observations": [
            {"name": ch["name"], "data": rng.poisson(t).astype(float).tolist()} for ch, t in zip(channels, total)
        ],
        "measurements": [
            {
                "name": "m",
                "config": {
                    "poi": "mu",
                    "parameters": [{"name": "mu", "bounds": [[0.0, 20.0]], "inits": [1.0]}]
                    + ([{"name": "rate_b", "bounds": [[0.0, 5.0]]}] if free_factor else []),
                },
            }
        ],
        "version": "1.0.0",
    }
    patch = {
        "metadata": {"name": "p", "values": [50.0], "reference_cross_section_cm2": 1e-46},
        "patch": [
            {
                "op": "add",
                "path": f"/channels/{i}/samples/-",
                "value": {
                    "name": "signal",
                    "data": rng.uniform(0.5, 4.0, BINS).tolist(),
                    "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None},
                        {"name": "signal_efficiency", "type": "normsys", "data": {"hi": 1.15, "lo": 0.8}},
                    ],
                },
            }
            for i in range(2)
        ],
    }
    return ws, patch
