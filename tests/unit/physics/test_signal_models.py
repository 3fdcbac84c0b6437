"""Signal models for reinterpretation: physics of the new spectra, model files and user spectra."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dmpreserve.errors import InvalidSpectrum
from dmpreserve.physics.halo import StandardHalo
from dmpreserve.physics.nr_models import Interaction, rate_nr
from dmpreserve.physics.sd_structure import structure_function
from dmpreserve.physics.signal_models import load_model, model_from_dict, read_spectrum_csv
from dmpreserve.physics.wimp import XENON_ISOTOPES, rate_si

HALO = StandardHalo.baxter2021()
E = np.linspace(0.5, 80.0, 160)


def test_contact_elastic_si_equals_rate_si() -> None:
    ours = rate_nr(E, mass_gev=50.0, cross_section_cm2=1e-45, halo=HALO, interaction=Interaction())
    np.testing.assert_allclose(ours, rate_si(E, mass_gev=50.0, cross_section_cm2=1e-45, halo=HALO), rtol=1e-12)


def test_heavy_mediator_is_contact_and_light_mediator_suppresses() -> None:
    contact = rate_nr(E, mass_gev=50.0, cross_section_cm2=1e-45, halo=HALO, interaction=Interaction())
    heavy = rate_nr(
        E, mass_gev=50.0, cross_section_cm2=1e-45, halo=HALO, interaction=Interaction(mediator_mass_mev=1e6)
    )
    np.testing.assert_allclose(heavy, contact, rtol=1e-6)
    light = rate_nr(
        E, mass_gev=50.0, cross_section_cm2=1e-45, halo=HALO, interaction=Interaction(mediator_mass_mev=10.0)
    )
    assert np.all(light[contact > 0] < contact[contact > 0])
    # P(q) = m^4 / (m^2 + q^2)^2 with q = sqrt(2 m_N E): check one point on the heaviest-fraction isotope scale
    q_mev = math.sqrt(2 * XENON_ISOTOPES[6].mass_gev * 10e-6) * 1e3
    ratio = rate_nr(
        10.0, mass_gev=1e4, cross_section_cm2=1e-45, halo=HALO, interaction=Interaction(mediator_mass_mev=10.0)
    ) / rate_si(10.0, mass_gev=1e4, cross_section_cm2=1e-45, halo=HALO)
    assert float(ratio) == pytest.approx(100.0**2 / (100.0 + q_mev**2) ** 2, rel=0.05)


def test_inelastic_raises_threshold_and_zero_delta_is_elastic() -> None:
    el = rate_nr(E, mass_gev=100.0, cross_section_cm2=1e-45, halo=HALO, interaction=Interaction(delta_kev=0.0))
    np.testing.assert_allclose(el, rate_si(E, mass_gev=100.0, cross_section_cm2=1e-45, halo=HALO), rtol=1e-12)
    inel = rate_nr(E, mass_gev=100.0, cross_section_cm2=1e-45, halo=HALO, interaction=Interaction(delta_kev=100.0))
    assert inel[0] == 0.0  # v_min above v_esc + v_E at the lowest energies
    assert inel.max() > 0 and np.argmax(inel) > 5  # spectrum peaks away from zero


@pytest.mark.parametrize("isotope, spin, spin_exp", [(129, 0.5, 0.329), (131, 1.5, 0.272)])
def test_sd_structure_function_normalisation(isotope: int, spin: float, spin_exp: float) -> None:
    """S_n(0) = (2J+1)(J+1)<S_n>^2/(pi J) with Klos et al.'s <S_n> (1b currents) within the 2b band."""
    s0 = float(structure_function(0.0, isotope=isotope, coupling="n", nucleus_mass_gev=isotope * 0.9315))
    expected = (2 * spin + 1) * (spin + 1) * spin_exp**2 / (math.pi * spin)
    assert 0.6 * expected < s0 < 1.05 * expected
    sp0 = float(structure_function(0.0, isotope=isotope, coupling="p", nucleus_mass_gev=isotope * 0.9315))
    assert sp0 < 0.05 * s0  # odd-neutron nuclei: proton coupling is tiny


def test_sd_neutron_rate_dominates_proton_and_bad_coupling() -> None:
    n = rate_nr(E, mass_gev=50.0, cross_section_cm2=1e-40, halo=HALO, interaction=Interaction(coupling="sd_n"))
    p = rate_nr(E, mass_gev=50.0, cross_section_cm2=1e-40, halo=HALO, interaction=Interaction(coupling="sd_p"))
    assert np.all(n > 10 * p)
    with pytest.raises(InvalidSpectrum):
        Interaction(coupling="tensor")


def test_model_files(tmp_path) -> None:
    m = model_from_dict(
        {"model": "light_mediator", "mediator_mass_mev": 5.0, "masses_gev": {"min": 10, "max": 100, "count": 3}}
    )
    assert m.masses_gev == (10.0, 31.6228, 100.0) and m.interaction.mediator_mass_mev == 5.0
    assert model_from_dict({"model": "er_line"}).is_er
    bad = [
        ({"model": "axion"}, "$.model"),
        ({"model": "inelastic"}, "delta_kev"),
        (
            {"model": "si", "halo": {"rho0_gev_cm3": 0.3, "v0_km_s": 220, "v_esc_km_s": 200, "v_earth_km_s": 232}},
            "halo",
        ),
        ({"model": "si", "extra": 1}, "$"),
        ({"model": "si", "masses_gev": {"min": 10, "max": 1, "count": 3}}, "masses_gev.max"),
    ]
    for doc, field in bad:
        with pytest.raises(InvalidSpectrum) as err:
            model_from_dict(doc, path="m.yaml")
        assert err.value.field == field and err.value.path == "m.yaml"
    f = tmp_path / "m.yaml"
    f.write_text("model: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(InvalidSpectrum):
        load_model(f)
    f.write_text("model: sd_proton\n")
    assert load_model(f).strength_unit.startswith("cm^2 (SD WIMP-proton")


def test_user_spectrum_csv(tmp_path) -> None:
    f = tmp_path / "s.csv"
    f.write_text("mass_gev,energy_kev,dr_de\n10,1,2.0\n10,2,1.0\n20,1,1.0\n20,5,0.5\n")
    s = read_spectrum_csv(f)
    assert s.masses_gev == (10.0, 20.0)
    # log interpolation between positive nodes: sqrt(2 * 1) at the midpoint, zero outside the table
    assert s.rate(0, scale=2.0)(np.array([1.5, 3.0])) == pytest.approx([2.0 * math.sqrt(2.0), 0.0])
    assert s.rate(0, scale=2.0, rule="linear")(np.array([1.5, 3.0])).tolist() == [3.0, 0.0]
    assert s.path == str(f) and s.breakpoints_kev(1).tolist() == [1.0, 5.0]
    cases = {
        "mass_gev,energy_kev\n1,2\n": "dr_de",
        "mass_gev,energy_kev,dr_de\n10,2,1\n10,1,1\n": "energy_kev",
        "mass_gev,energy_kev,dr_de\n10,1,-1\n10,2,1\n": "$.rows[0].dr_de",
        "mass_gev,energy_kev,dr_de\n10,1,nan\n10,2,1\n": "$.rows[0].dr_de",
        "mass_gev,energy_kev,dr_de\n10,1,x\n10,2,1\n": "dr_de",
        "mass_gev,energy_kev,dr_de\n10,1,0\n10,2,0\n": "dr_de",
    }
    for text, field in cases.items():
        f.write_text(text)
        with pytest.raises(Exception) as err:
            read_spectrum_csv(f)
        assert getattr(err.value, "field", None) == field, (text, err.value)


def test_signal_step_with_model(pipeline_dir, mdc_dir, small_config_path, tmp_path) -> None:
    """``dmpreserve signal --model``: the model's masses and couplings; ER lines are refused (exit 2)."""
    from dmpreserve.cli import main
    from dmpreserve.files import read_json

    models = Path(__file__).resolve().parents[3] / "workflow" / "config" / "models"
    argv = [
        "signal",
        "--config",
        str(small_config_path),
        "--response-nr",
        str(pipeline_dir / "response" / "response_nr.json"),
        "--exposure",
        str(pipeline_dir / "selection" / "exposure.json"),
        "--mass-grid",
        str(tmp_path / "grid.json"),
        "--signal",
        str(tmp_path / "s.json"),
        "--spectra",
        str(tmp_path / "s.csv"),
    ]
    assert (
        main(
            [
                "mass-grid",
                "--config",
                str(small_config_path),
                "--signal-model",
                str(models / "sd_neutron.yaml"),
                "-o",
                str(tmp_path / "grid.json"),
            ]
        )
        == 0
    )
    assert main([*argv, "--model", str(models / "sd_neutron.yaml")]) == 0
    doc = read_json(tmp_path / "s.json")
    assert len(doc["masses_gev"]) == 25 and doc["model"].startswith("sd_neutron")
    assert doc["units"]["reference_cross_section_cm2"] == "cm^2 (SD WIMP-neutron)"
    si = read_json(pipeline_dir / "signal" / "signal.json")
    assert min(doc["reference_cross_section_cm2"]) > 1e3 * max(si["reference_cross_section_cm2"])  # SD is weaker
    assert main([*argv, "--model", str(models / "er_line.yaml")]) == 2


def test_reinterpret_cli_bad_input(tmp_path, capsys) -> None:
    from dmpreserve.cli import main

    good = tmp_path / "m.yaml"
    good.write_text("model: si\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    kit = tmp_path / "kit"
    kit.mkdir()
    cases = [
        (["--model", str(bad)], "bad.yaml"),
        (["--model", str(good)], "kit.json"),
        (["--model", str(good), "--reference-cross-section", "-1"], "--reference-cross-section"),
        (["--model", str(good), "--masses", "10,x"], "--masses"),
    ]
    for extra, needle in cases:
        assert main(["reinterpret", "--kit", str(kit), "-o", str(tmp_path / "o"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("dmpreserve reinterpret: error:") and needle in err and err.count("\n") == 1, err
