"""XENON1T 2018 binwise approximate-likelihood backend: reproduce the published SI limit curve.

Needs the public release files in ../shared/reference/xenon1t_2018 (see that folder's README);
the tests skip with a clear reason where they are absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dmpreserve.cli import main
from dmpreserve.errors import InvalidData
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.physics.wimp import rate_si
from dmpreserve.reinterpret.verify import compare, read_curve
from dmpreserve.reinterpret.xenon1t import is_binwise_release, load_binwise

REPO = Path(__file__).resolve().parents[3]
RELEASE = REPO.parent / "shared" / "reference" / "xenon1t_2018"
SI_2018 = REPO / "workflow" / "config" / "models" / "si_shm2018.yaml"
pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(
        not is_binwise_release(RELEASE),
        reason=f"XENON1T binwise release not found at {RELEASE} (public data of "
        "XENON1T/xenon1t_approximate_nuclear_recoil_likelihood; see shared/reference/README.md)",
    ),
]


def test_reproduces_published_curve_above_20_gev(tmp_path, capsys) -> None:
    out = tmp_path / "x1t"
    assert main(["reinterpret", "--kit", str(RELEASE), "--model", str(SI_2018), "-o", str(out)]) == 0
    published = read_curve(RELEASE / "xenon1t_1ty.csv")
    rows = compare(published, read_curve(out / "limits.csv"), rtol=0.10, mass_range=(20.0, 1e9))
    assert len(rows) == 11 and all(r.ok for r in rows), [(r.mass_gev, r.ratio) for r in rows]
    # below 20 GeV the approximate likelihood is known to be less accurate: report, and bound loosely
    low = compare(published, read_curve(out / "limits.csv"), rtol=10.0, mass_range=(0.0, 19.0))
    assert all(0.5 < r.ratio < 3.0 for r in low)
    doc = json.loads((out / "limits.json").read_text())
    assert doc["threshold"] == "toy-MC Neyman"


def test_reference_spectrum_gives_same_limit_as_ours() -> None:
    """The collaboration's 50 GeV spectrum and our 2018-halo spectrum give limits within 1%."""
    bw = load_binwise(RELEASE)
    ref = np.loadtxt(RELEASE / "dRdE_wimp_SI_50GeV_10-45.csv", delimiter=",")
    x_ref = bw.upper_limit(bw.fold(lambda e: np.interp(e, ref[:, 0], ref[:, 1], left=0, right=0)))
    ours = bw.upper_limit(
        bw.fold(lambda e: rate_si(e, mass_gev=50.0, cross_section_cm2=1e-45, halo=StandardHalo.shm_2018()))
    )
    assert ours == pytest.approx(x_ref, rel=0.01)
    assert bw.upper_limit(
        bw.fold(lambda e: 2 * rate_si(e, mass_gev=50.0, cross_section_cm2=1e-45, halo=StandardHalo.shm_2018()))
    ) == pytest.approx(ours / 2, rel=1e-6)


def test_malformed_release(tmp_path) -> None:
    d = tmp_path / "rel"
    shutil.copytree(RELEASE, d)
    mm = json.loads((d / "XENON1T_binwise_NR_MM.json").read_text())
    mm["Z"]["Data"]["0"] = mm["Z"]["Data"]["0"][:-1]
    (d / "XENON1T_binwise_NR_MM.json").write_text(json.dumps(mm))
    with pytest.raises(InvalidData) as err:
        load_binwise(d)
    assert err.value.field == "Z.Data.0" and err.value.path.endswith("XENON1T_binwise_NR_MM.json")
    assert main(["reinterpret", "--kit", str(d), "--model", str(SI_2018), "-o", str(tmp_path / "o")]) == 2
