"""The no-floor criterion on the DEFAULT configuration's outputs (slow: the default MDC and NEST responses).

Criterion (dmpreserve.backgrounds.quality): for every component with more than one expected event, the
bins resting on fewer than 10 effective simulated events, n_k = (t_k / sigma_k)^2, carry less than 1% of
its expected events.  On the default configuration (ER lines 0.5:30:0.5 keV with 2000 NEST events each,
200000 accidental pairings) the ER template has 0.3% of its events in such bins and the accidentals 0.2%;
with 100 events per line the ER fails it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from front_steps import response_and_backgrounds, select_steps

from dmpreserve.artifacts.templates import read_templates
from dmpreserve.backgrounds.quality import MAX_POORLY_SAMPLED_FRACTION, poorly_sampled_fraction
from dmpreserve.cli import main
from dmpreserve.mdc.generate import MdcOutputs, generate

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG = REPO / "workflow" / "config" / "config.yaml"


def _run(config: Path, r: Path, events_per_line: int) -> Path:
    from dmpreserve.config import load_config

    m = r / "mdc"
    if not (m / "science.parquet").exists():
        m.mkdir(parents=True, exist_ok=True)
        names = ("science", "truth", "calib_er", "calib_nr", "sim_nr", "isolated_s1", "isolated_s2")
        generate(load_config(config), MdcOutputs(**{k: str(m / f"{k}.parquet") for k in names}))
    c, out = str(config), r / f"epl{events_per_line}"
    steps = [
        *select_steps(m, c, r),
        *response_and_backgrounds(m, c, r, out, ["--er-events-per-line", str(events_per_line)]),
    ]
    for argv in steps:
        assert main(argv) == 0, argv[0]
    return out / "templates.json"


@pytest.fixture(scope="module")
def default_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("default_bg")


def test_default_shapes_are_well_sampled(default_dir: Path) -> None:
    t = read_templates(_run(DEFAULT_CONFIG, default_dir, 2000))
    checked = []
    for name, comp in t.components.items():
        assert comp.stat_err is not None, name
        if comp.expected_events > 1:
            checked.append(name)
            frac = poorly_sampled_fraction(comp.template, comp.stat_err)
            assert frac < MAX_POORLY_SAMPLED_FRACTION, (name, frac)
    assert sorted(checked) == ["accidental", "er"]


def test_criterion_fails_with_a_thin_er_response(default_dir: Path) -> None:
    """The same criterion rejects the ER shape made from 100 NEST events per line (it can fail)."""
    er = read_templates(_run(DEFAULT_CONFIG, default_dir, 100)).components["er"]
    assert poorly_sampled_fraction(er.template, er.stat_err) > MAX_POORLY_SAMPLED_FRACTION
