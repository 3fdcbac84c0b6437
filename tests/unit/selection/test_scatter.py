"""Tests of the scattered select (dmpreserve.selection.scatter), the upstream cuts and the exposure.

The reference is the in-memory engine (``apply_cuts`` on the whole science file), independent of the
streaming engine that select-part runs: same events, same order, same cut flow, whatever the split
of the science run into files and of the files into parts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hostile_damage import split_reduced

from dmpreserve.artifacts.exposure import read_exposure
from dmpreserve.artifacts.reduced import ReducedData, read_reduced, write_reduced
from dmpreserve.artifacts.tables import CutFlow
from dmpreserve.errors import InvalidData
from dmpreserve.physics.constants import SECONDS_PER_YEAR
from dmpreserve.selection.cuts import (
    Cut,
    apply_cuts,
    cuts_for,
    cuts_from_config,
    exposure_of,
    fiducial_mass_from_cuts,
)
from dmpreserve.selection.scatter import gather, select_part

UPSTREAM = [{"name": "fiducial_radius", "definition": "r < 68.8 cm, applied at the data centre", "efficiency": 0.97}]


def _data(meta: dict | None = None, **columns) -> ReducedData:
    cols = {k: np.asarray(v, float) for k, v in columns.items()}
    n = len(next(iter(cols.values())))
    return ReducedData(columns=cols, meta={"n_events": n, "kind": "science", **(meta or {})}, path="f.parquet")


# ------------------------------------------------------------------------------- upstream cuts


def test_cut_on_missing_column_is_refused_naming_file_cut_and_column() -> None:
    cuts = [Cut("roi", "roi", "cs1_phd", 3.0, 80.0), Cut("fid_r", "fiducial", "r_cm", upper=60.0)]
    data = _data(cs1_phd=[1.0, 10.0], x_cm=[0.0, 1.0])
    with pytest.raises(InvalidData, match=r"f.parquet: y_cm: configured cut 'fid_r' needs this column") as info:
        apply_cuts(data, cuts)
    assert info.value.field == "y_cm"
    with pytest.raises(InvalidData, match=r"other.parquet: x_cm: configured cut 'fid_r'"):
        cuts_for(cuts, {}, ["cs1_phd"], "other.parquet")


def test_cut_declared_upstream_is_not_applied_again() -> None:
    cuts = [Cut("roi", "roi", "cs1_phd", 3.0, 80.0), Cut("fiducial_radius", "fiducial", "r_cm", upper=60.0)]
    data = _data({"upstream_cuts": UPSTREAM}, cs1_phd=[1.0, 10.0, 20.0, 90.0])  # no x, y: the cut was applied
    effective = cuts_for(cuts, data.meta, list(data.columns), data.path)
    assert effective.upstream_names == ("fiducial_radius",) and effective.applied == (cuts[0],)
    mask, flow = apply_cuts(data, cuts)
    assert mask.tolist() == [False, True, True, False]
    assert flow.cuts == ("all", "roi", "fiducial_radius") and flow.events == (4, 2, 2)
    assert flow.descriptions[2] == "applied upstream (r < 68.8 cm, applied at the data centre)"
    # declared upstream although the columns are there: still not applied again
    data = _data({"upstream_cuts": UPSTREAM}, cs1_phd=[10.0, 10.0], x_cm=[0.0, 100.0], y_cm=[0.0, 0.0])
    assert apply_cuts(data, cuts)[0].tolist() == [True, True]


# ------------------------------------------------------------------------------------ exposure

DETECTOR = {"lxe_density_g_cm3": 2.888, "drift_velocity_mm_per_us": 1.5}


def test_exposure_from_fiducial_cuts_times_summed_live_time() -> None:
    cuts = [Cut("r", "fiducial", "r_cm", upper=60.0), Cut("dt", "fiducial", "drift_time_us", 50.0, 900.0)]
    expo = exposure_of(cuts, detector=DETECTOR, live_time_s=1e6, nominal_masses=[("a.json", None)])
    mass = fiducial_mass_from_cuts(DETECTOR, cuts)
    # independent: cylinder of radius 60 cm, height (900-50) us x 0.15 cm/us, density 2.888 g/cm3
    assert mass == pytest.approx(math.pi * 60.0**2 * 850 * 0.15 * 2.888 / 1e6, rel=1e-12)
    assert expo.fiducial_mass_t == mass and expo.live_time_s == 1e6
    assert expo.exposure_t_yr == pytest.approx(mass * 1e6 / (365.25 * 86400), rel=1e-15)


def test_exposure_without_fiducial_cut_uses_the_sidecars_nominal_mass() -> None:
    cuts = [Cut("roi", "roi", "cs1_phd", 3.0, 80.0)]
    expo = exposure_of(cuts, detector=DETECTOR, live_time_s=2e6, nominal_masses=[("a.json", 5.5), ("b.json", 5.5)])
    assert expo.fiducial_mass_t == 5.5 and expo.exposure_t_yr == 5.5 * 2e6 / SECONDS_PER_YEAR
    with pytest.raises(InvalidData, match=r"b.json: \$.exposure.fiducial_mass_t: the configuration has no fiducial"):
        exposure_of(cuts, detector=DETECTOR, live_time_s=1.0, nominal_masses=[("a.json", 5.5), ("b.json", None)])
    with pytest.raises(InvalidData, match=r"b.json: \$.exposure.fiducial_mass_t: nominal fiducial mass 5.6 t differs"):
        exposure_of(cuts, detector=DETECTOR, live_time_s=1.0, nominal_masses=[("a.json", 5.5), ("b.json", 5.6)])


# ------------------------------------------------------------------- select-part and the gather


def _select(config, config_path: Path, groups: list[list[Path]], sim: Path, out: Path) -> dict[str, Path]:
    parts, flows = [], []
    for i, group in enumerate(groups):
        parts.append(out / "parts" / f"part-{i}.parquet")
        flows.append(out / "parts" / f"part-{i}_cutflow.json")
        select_part(config, group, selected=parts[-1], cutflow=flows[-1])
    res = {k: out / n for k, n in (("selected", "selected.parquet"), ("cutflow", "cutflow.csv"))}
    res |= {"acceptance": out / "acceptance.csv", "exposure": out / "exposure.json"}
    gather(config, parts, flows, sim, **res)
    return res


@pytest.fixture(scope="module")
def one_file(tmp_path_factory, mdc_dir: Path, small_config, small_config_path) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("one")
    return _select(small_config, small_config_path, [[mdc_dir / "science.parquet"]], mdc_dir / "sim_nr.parquet", out)


def test_select_equals_the_in_memory_selection(one_file, mdc_dir: Path, small_config) -> None:
    science = read_reduced(mdc_dir / "science.parquet")
    mask, flow = apply_cuts(science, cuts_from_config(small_config))
    selected = read_reduced(one_file["selected"], kinds=("science",))
    assert len(selected) == int(mask.sum()) > 0
    for name, values in science.columns.items():  # same events, same order, every column
        np.testing.assert_array_equal(selected.columns[name], values[mask])
    assert CutFlow.read(one_file["cutflow"]) == flow
    assert selected.meta["live_time_s"] == science.meta["live_time_s"]
    assert selected.meta["selection"] == {
        "config_sha256": small_config.sha256,
        "cuts": [c["name"] for c in small_config.cuts()],
    }
    expo = read_exposure(one_file["exposure"])
    mass = fiducial_mass_from_cuts(science.meta["detector"], cuts_from_config(small_config))
    assert expo.fiducial_mass_t == mass and expo.live_time_s == science.meta["live_time_s"]


def test_science_split_into_four_files_gives_identical_results(
    tmp_path: Path, one_file, mdc_dir: Path, small_config, small_config_path
) -> None:
    files = sorted(split_reduced(mdc_dir / "science.parquet", tmp_path / "split", 4).glob("*.parquet"))
    assert len(files) == 4
    for groups in ([files], [files[:2], [files[2]], [files[3]]]):
        out = tmp_path / f"groups{len(groups)}"
        res = _select(small_config, small_config_path, groups, mdc_dir / "sim_nr.parquet", out)
        assert pq.read_table(res["selected"]).equals(pq.read_table(one_file["selected"]))
        for name in ("cutflow", "acceptance", "exposure"):
            assert res[name].read_bytes() == one_file[name].read_bytes(), name
        parts = [json.loads(p.read_text()) for p in sorted((out / "parts").glob("*_cutflow.json"))]
        assert sum(p["n_events"] for p in parts) == read_reduced(mdc_dir / "science.parquet").meta["n_events"]
        assert [f["path"] for p in parts for f in p["files"]] == [str(f) for f in files]


def test_upstream_cut_in_the_science_files(tmp_path: Path, mdc_dir: Path, small_config, small_config_path) -> None:
    """Science files without x, y whose sidecar declares fiducial_radius applied upstream."""
    science = read_reduced(mdc_dir / "science.parquet")
    meta = {k: v for k, v in science.meta.items() if k not in ("columns", "n_events")}
    path = tmp_path / "no_xy.parquet"
    cols = {k: v for k, v in science.columns.items() if k not in ("x_cm", "y_cm")}
    write_reduced(path, cols, {**meta, "upstream_cuts": UPSTREAM})
    res = _select(small_config, small_config_path, [[path]], mdc_dir / "sim_nr.parquet", tmp_path / "out")
    cuts = cuts_from_config(small_config)
    mask, _ = apply_cuts(science, [c for c in cuts if c.name != "fiducial_radius"])
    selected = read_reduced(res["selected"])
    np.testing.assert_array_equal(selected.columns["event_id"], science.columns["event_id"][mask])
    assert selected.meta["upstream_cuts"] == UPSTREAM  # carried over for the signal step
    flow = CutFlow.read(res["cutflow"])
    i = flow.cuts.index("fiducial_radius")
    assert flow.events[i] == flow.events[i - 1] and flow.descriptions[i].startswith("applied upstream")
    # the exposure still uses the configured fiducial bounds
    assert read_exposure(res["exposure"]).fiducial_mass_t == fiducial_mass_from_cuts(science.meta["detector"], cuts)
    # without the declaration the same file is refused, naming the file, the cut and the column
    write_reduced(path, cols, meta)
    with pytest.raises(InvalidData, match=r"no_xy.parquet: x_cm: configured cut 'fiducial_radius'"):
        select_part(small_config, [path], selected=tmp_path / "p.parquet", cutflow=tmp_path / "p.json")
    assert not (tmp_path / "p.parquet").exists() and not (tmp_path / "p.json").exists()


def test_streamed_bad_value_names_its_file(tmp_path: Path, mdc_dir: Path, small_config) -> None:
    files = sorted(split_reduced(mdc_dir / "science.parquet", tmp_path / "split", 3).glob("*.parquet"))
    table = pq.read_table(files[2])
    s2 = table.column("s2_phd").to_numpy().copy()
    s2[-1] = -3.0
    pq.write_table(table.set_column(table.column_names.index("s2_phd"), "s2_phd", [s2]), files[2])
    with pytest.raises(InvalidData, match=r"part-2.parquet: s2_phd: negative values \(minimum -3.0\)"):
        select_part(small_config, files, selected=tmp_path / "p.parquet", cutflow=tmp_path / "p.json")
    assert not list(tmp_path.glob("p.*")) and not list(tmp_path.glob(".p.*"))


def test_gather_refuses_parts_that_do_not_belong(
    tmp_path: Path, mdc_dir: Path, small_config, small_config_path, test_config_doc
) -> None:
    files = sorted(split_reduced(mdc_dir / "science.parquet", tmp_path / "split", 2).glob("*.parquet"))
    parts = [tmp_path / f"part-{i}.parquet" for i in range(2)]
    flows = [tmp_path / f"part-{i}_cutflow.json" for i in range(2)]
    for f, p, c in zip(files, parts, flows):
        select_part(small_config, [f], selected=p, cutflow=c)
    out = {k: tmp_path / "out" / f"{k}.x" for k in ("selected", "cutflow", "acceptance", "exposure")}
    sim = mdc_dir / "sim_nr.parquet"

    def refused(pattern: str, parts=parts, flows=flows, config=small_config) -> None:
        with pytest.raises(InvalidData, match=pattern):
            gather(config, parts, flows, sim, **out)
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())

    refused(
        r"part-1_cutflow.json: \$.selected: cut flow of part 'part-1.parquet', given with part 'part-0",
        flows=flows[::-1],
    )
    refused(r"--part-cutflows: 2 parts but 1 part cut flows", flows=flows[:1])
    other = dict(test_config_doc)
    other["seed"] = int(other.get("seed", 0)) + 1
    from dmpreserve.config import config_from_dict

    refused(
        r"part-0_cutflow.json: \$.config_sha256: part selected with another configuration",
        config=config_from_dict(other),
    )
    doc = json.loads(flows[1].read_text())
    doc["files"][0]["path"] = str(files[0])
    flows[1].write_text(json.dumps(doc))
    refused(rf"part-1_cutflow.json: \$.files: science file {files[0]} is also in part")


def test_selected_file_bytes_do_not_depend_on_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mdc_dir: Path, small_config, small_config_path
) -> None:
    """Row groups of 17 events: the gather writes the same row groups, hence the same bytes, for any split."""
    import dmpreserve.selection.scatter as scatter

    monkeypatch.setattr(scatter, "SELECTED_ROW_GROUP_ROWS", 17)
    files = sorted(split_reduced(mdc_dir / "science.parquet", tmp_path / "split", 4).glob("*.parquet"))
    sim = mdc_dir / "sim_nr.parquet"
    one = _select(small_config, small_config_path, [files], sim, tmp_path / "one")
    three = _select(small_config, small_config_path, [[files[0]], files[1:3], [files[3]]], sim, tmp_path / "three")
    assert pq.ParquetFile(one["selected"]).metadata.num_row_groups > 2
    assert one["selected"].read_bytes() == three["selected"].read_bytes()
    assert one["selected"].with_suffix(".json").read_bytes() == three["selected"].with_suffix(".json").read_bytes()
