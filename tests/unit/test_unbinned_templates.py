"""``dmpreserve unbinned-templates`` on the session's small pipeline: the fine templates against the binned
templates and signal of the same inputs, the workspace's sample names, the observed events, and its errors."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from unbinned_steps import unbinned_argv, unbinned_config

from dmpreserve.artifacts.signal_templates import read_signal
from dmpreserve.artifacts.templates import read_templates
from dmpreserve.artifacts.unbinned import read_unbinned_templates
from dmpreserve.cli import main
from dmpreserve.config import config_from_dict
from dmpreserve.errors import InvalidData
from dmpreserve.files import read_json
from dmpreserve.unbinned import fine_bins, fine_config, smoothed_shape


@pytest.fixture(scope="module")
def built(tmp_path_factory, pipeline_dir: Path, mdc_dir: Path, small_config_path: Path):
    """(analysis-binning run without smoothing, 2x finer run without smoothing, 2x finer run smoothed)."""
    tmp = tmp_path_factory.mktemp("unbinned")
    n1, n2 = yaml.safe_load(small_config_path.read_text())["analysis"]["binning"].values()
    out = []
    for bins, smoothing in (((n1["bins"], n2["bins"]), 0.0), ((2 * n1["bins"], 2 * n2["bins"]), 0.0)):
        config = unbinned_config(tmp, small_config_path, bins, smoothing)
        path = tmp / f"{config.stem}.h5"
        assert main(unbinned_argv(config, pipeline_dir, mdc_dir, path)) == 0
        out.append(read_unbinned_templates(path))
    config = unbinned_config(tmp, small_config_path, (2 * n1["bins"], 2 * n2["bins"]), 1.5)
    smoothed = tmp / "smoothed.h5"
    assert main(unbinned_argv(config, pipeline_dir, mdc_dir, smoothed)) == 0
    again = tmp / "again.h5"
    assert main(unbinned_argv(config, pipeline_dir, mdc_dir, again)) == 0
    assert smoothed.read_bytes() == again.read_bytes()  # a rerun is byte-identical
    return (*out, read_unbinned_templates(smoothed))


def test_on_the_analysis_binning_the_shapes_are_the_binned_ones(built, pipeline_dir: Path) -> None:
    """Unsmoothed on the analysis binning, every shape is the backgrounds and signal steps' template normalised:
    the same inputs, the ER lines resimulated with the response step's seed give the response step's events."""
    same = built[0]
    templates = read_templates(pipeline_dir / "backgrounds" / "templates.json")
    signal = read_signal(pipeline_dir / "signal" / "signal.json")
    assert same.sample_names == tuple(sorted(templates.components))
    for name, comp in templates.components.items():
        t = np.asarray(comp.template, float).ravel()
        np.testing.assert_allclose(same.shape_of(name), t / t.sum(), rtol=1e-9, atol=1e-15, err_msg=name)
    assert same.masses_gev == pytest.approx(signal.masses_gev, rel=1e-12)
    for m, t in zip(signal.masses_gev, signal.templates):
        np.testing.assert_allclose(same.signal_shape(m), t / t.sum(), rtol=1e-9, atol=1e-15)
    observed = np.bincount(same.observed_bins, minlength=same.signal.shape[1])
    np.testing.assert_array_equal(observed, np.asarray(templates.observed).ravel())
    np.testing.assert_array_equal(same.cs1_edges, templates.cs1_edges_phd)


def test_fine_responses_are_the_response_steps_on_its_binning(built, pipeline_dir: Path) -> None:
    """The stored fine responses (what a kit folds new models through) on the analysis binning are the response
    step's own NR and ER responses (same NR simulation and efficiency; ER lines with the step's seed)."""
    from dmpreserve.artifacts.response import read_line_response, read_response

    nr, er = built[0].fine_responses()
    step_nr = read_response(pipeline_dir / "response" / "response_nr.json")
    step_er = read_line_response(pipeline_dir / "response" / "response_er.json")
    np.testing.assert_array_equal(nr.energy_edges_kev, step_nr.energy_edges_kev)
    np.testing.assert_allclose(nr.matrix, step_nr.matrix, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(er.line_energies_kev, step_er.line_energies_kev)
    np.testing.assert_allclose(er.matrix, step_er.matrix, rtol=1e-12, atol=1e-15)
    assert nr.binning.cs1_edges_phd == pytest.approx(step_nr.binning.cs1_edges_phd, rel=1e-14)
    for t in built[1:]:  # finer grids: the same recoils, so the same total efficiency per energy
        n, e = t.fine_responses()
        np.testing.assert_allclose(n.matrix.sum(axis=1), step_nr.matrix.sum(axis=1), rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(e.matrix.sum(axis=1), step_er.matrix.sum(axis=1), rtol=1e-9, atol=1e-15)


def test_sample_names_are_the_workspace_samples(built, pipeline_dir: Path) -> None:
    ws = read_json(pipeline_dir / "likelihood" / "BkgOnly.json")
    samples = [s["name"] for s in ws["channels"][0]["samples"]]
    assert all(t.sample_names == tuple(samples) for t in built)


def test_finer_bins_nest_into_the_analysis_bins(built) -> None:
    """The 2x finer unsmoothed shapes summed over 2x2 blocks are the analysis-binning shapes (same events)."""
    coarse, fine = built[0], built[1]
    n1, n2 = coarse.shape
    assert fine.shape == (2 * n1, 2 * n2)
    assert fine.cs1_edges[0] == coarse.cs1_edges[0] and fine.cs1_edges[-1] == coarse.cs1_edges[-1]
    np.testing.assert_allclose(fine.cs1_edges[::2], coarse.cs1_edges, rtol=1e-14)
    for rows_f, rows_c in ((fine.backgrounds, coarse.backgrounds), (fine.signal, coarse.signal)):
        summed = rows_f.reshape(-1, n1, 2, n2, 2).sum(axis=(2, 4)).reshape(len(rows_f), -1)
        np.testing.assert_allclose(summed, rows_c, rtol=1e-9, atol=1e-14)
    assert fine.observed_bins.size == coarse.observed_bins.size


def test_smoothing_keeps_the_total_and_spreads_the_shapes(built) -> None:
    fine, smooth = built[1], built[2]
    assert smooth.smoothing_bins == 1.5 and fine.smoothing_bins == 0.0
    np.testing.assert_allclose(smooth.backgrounds.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(smooth.signal.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.count_nonzero(smooth.backgrounds) > np.count_nonzero(fine.backgrounds)
    np.testing.assert_array_equal(smooth.observed_bins, fine.observed_bins)


def test_fine_bins_follow_histogram2d(small_config) -> None:
    raw = copy.deepcopy(small_config.raw)
    raw["likelihood"]["unbinned"] = {"binning": {"cs1_phd": {"bins": 7}, "log10_cs2": {"bins": 9}}, "smoothing_bins": 0}
    raw.setdefault("statistics", {})["neyman_threshold"] = "toys"
    binning = fine_config(config_from_dict(raw)).binning
    rng = np.random.default_rng(3)
    e1, e2 = np.asarray(binning.cs1_edges_phd), np.asarray(binning.log10_cs2_edges)
    gx, gy = np.meshgrid(e1, e2)  # every edge, the closing ones included; and points outside the grid
    x = np.concatenate([rng.uniform(0, 90, 500), gx.ravel()])
    y = np.concatenate([rng.uniform(2.5, 4.8, 500), gy.ravel()])
    h, _, _ = np.histogram2d(x, y, bins=[e1, e2])
    np.testing.assert_array_equal(np.bincount(fine_bins(x, y, binning), minlength=h.size), h.ravel())
    assert smoothed_shape(np.zeros(4), (2, 2), 1.0).sum() == 0


def test_without_unbinned_section_one_line_error(
    tmp_path: Path, pipeline_dir: Path, mdc_dir: Path, small_config_path: Path, capsys
) -> None:
    assert main(unbinned_argv(small_config_path, pipeline_dir, mdc_dir, tmp_path / "x.h5")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dmpreserve unbinned-templates: error: ")
    assert "$.likelihood.unbinned" in err[0] and not (tmp_path / "x.h5").exists()


def test_empty_component_is_refused(
    tmp_path: Path, pipeline_dir: Path, mdc_dir: Path, small_config_path: Path, monkeypatch
) -> None:
    """A component whose fine template is all zero (here: made so) has no density: refused, naming it."""
    import dataclasses

    import dmpreserve.unbinned as unbinned
    from dmpreserve.artifacts.exposure import read_exposure
    from dmpreserve.artifacts.reduced import read_dataset, read_reduced
    from dmpreserve.artifacts.response import read_line_response
    from dmpreserve.backgrounds import BackgroundInputs, science_run
    from dmpreserve.config import load_config

    build = unbinned.build_component

    def zero_neutrons(name, comp, inputs, config):
        out = build(name, comp, inputs, config)
        return dataclasses.replace(out, template=0.0 * out.template) if name == "neutron" else out

    monkeypatch.setattr(unbinned, "build_component", zero_neutrons)
    config = unbinned_config(tmp_path, small_config_path, (22, 20), 1.0)
    inputs = BackgroundInputs(
        science=science_run([mdc_dir / "science.parquet"]),
        selected=read_reduced(pipeline_dir / "selection" / "selected.parquet"),
        exposure=read_exposure(pipeline_dir / "selection" / "exposure.json"),
        calib_er=read_dataset([mdc_dir / "calib_er.parquet"]),
        isolated_s1=read_dataset([mdc_dir / "isolated_s1.parquet"]),
        isolated_s2=read_dataset([mdc_dir / "isolated_s2.parquet"]),
    )
    with pytest.raises(InvalidData, match="all zero") as info:
        unbinned.build_unbinned_templates(
            load_config(config),
            inputs,
            sim_nr=read_dataset([mdc_dir / "sim_nr.parquet"]),
            curve=None,
            upstream=(),
            er_line_energies_kev=read_line_response(pipeline_dir / "response" / "response_er.json").line_energies_kev,
            masses_gev=(50.0,),
        )
    assert info.value.field == "$.backgrounds.components.neutron" and info.value.path == str(config)
