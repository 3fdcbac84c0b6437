"""The checks of ``backgrounds.components`` a JSON Schema cannot express (part of :mod:`dmpreserve.config`).

Each background component has one normalisation source, a shape that source can feed, and, for built-in
spectra, only that spectrum's parameters (docs/physics.md, "The background model as data").
"""

from __future__ import annotations

from typing import Any

from dmpreserve.errors import InvalidConfig


def check_range(lo: float, hi: float, *, path: str, field: str) -> None:
    """Refuse a range whose ``min`` is not below its ``max``.

    Raises:
        InvalidConfig: naming the config file ``path`` and the JSON path ``field`` of the range.
    """
    if not lo < hi:
        raise InvalidConfig(f"inverted or empty range: min {lo} is not below max {hi}", path=path, field=field)


#: Normalisation sources of a background component (exactly one per component) and the shapes each fits.
NORMALISATION_SOURCES = ("expected_events", "rate_per_t_yr", "spectrum", "sideband", "data_driven", "template")
_SOURCES_OF_SHAPE = {
    "nest": ("expected_events", "rate_per_t_yr", "spectrum", "sideband"),
    "template": ("expected_events", "template"),
    "isolated_pairs": ("expected_events", "data_driven"),
    "radial_sideband": ("expected_events", "data_driven"),
}
#: Parameters of each built-in spectrum (dmpreserve.physics), and the built-ins that are absolute rates.
BUILTIN_PARAMETERS = {
    "cevns_8b": ("flux_per_cm2_s",),
    "radiogenic_neutrons": ("e_fold_kev",),
    "xe136_2vbb": ("half_life_yr", "abundance"),
}
ABSOLUTE_BUILTINS = ("cevns_8b", "xe136_2vbb")


def shape_kind(shape: Any) -> str:
    """``nest``, ``template``, ``isolated_pairs`` or ``radial_sideband`` for a schema-valid ``shape``."""
    return shape if isinstance(shape, str) else next(iter(shape))


def check_backgrounds(bkg: dict[str, Any], *, path: str, cs1_roi_max: float, r_fid_max: float) -> None:
    """The checks of ``backgrounds.components`` a schema cannot express (docs/physics.md).

    Raises:
        InvalidConfig: naming ``$.backgrounds.components.<name>...`` of the first inconsistency.
    """
    for name, comp in bkg["components"].items():
        where = f"$.backgrounds.components.{name}"
        shape = shape_kind(comp["shape"])
        norm = comp["normalisation"]
        sources = [k for k in NORMALISATION_SOURCES if k in norm]
        if len(sources) != 1:
            raise InvalidConfig(
                f"needs exactly one of {', '.join(NORMALISATION_SOURCES)}, got {sources or 'none'}",
                path=path,
                field=f"{where}.normalisation",
            )
        source = sources[0]
        if source not in _SOURCES_OF_SHAPE[shape]:
            raise InvalidConfig(
                f"a {shape} shape is normalised by {' or '.join(_SOURCES_OF_SHAPE[shape])}, not {source}",
                path=path,
                field=f"{where}.normalisation.{source}",
            )
        spectrum = comp.get("spectrum")
        if shape == "nest":
            for key in ("kind", "spectrum"):
                if key not in comp:
                    raise InvalidConfig("required by shape nest", path=path, field=f"{where}.{key}")
        elif spectrum is not None:
            raise InvalidConfig(f"a {shape} shape takes no spectrum", path=path, field=f"{where}.spectrum")
        if spectrum is not None:
            _check_spectrum(spectrum, path=path, where=f"{where}.spectrum", absolute=source == "spectrum")
        if source == "sideband":
            sb = norm["sideband"]["cs1_phd"]
            check_range(sb["min"], sb["max"], path=path, field=f"{where}.normalisation.sideband.cs1_phd")
            if comp.get("kind") != "ER":
                raise InvalidConfig(
                    "the sideband normalisation uses the ER calibration: kind must be ER",
                    path=path,
                    field=f"{where}.kind",
                )
            if sb["min"] < cs1_roi_max:
                raise InvalidConfig(
                    "the ER sideband must lie above the cS1 ROI",
                    path=path,
                    field=f"{where}.normalisation.sideband.cs1_phd.min",
                )
        if shape == "radial_sideband" and comp["shape"]["radial_sideband"]["r_min_cm"] <= r_fid_max:
            raise InvalidConfig(
                "the wall sideband must lie outside the fiducial radius",
                path=path,
                field=f"{where}.shape.radial_sideband.r_min_cm",
            )
        free = norm["constraint"].get("free")
        if free is not None and "bounds" in free:
            check_range(*free["bounds"], path=path, field=f"{where}.normalisation.constraint.free.bounds")


def _check_spectrum(spectrum: dict[str, Any], *, path: str, where: str, absolute: bool) -> None:
    """One component's ``spectrum`` (schema-valid): ranges, lengths, parameters; ``absolute``: a rate, not a shape."""
    kind, spec = next(iter(spectrum.items()))
    if kind == "flat":
        check_range(spec["energy_min_kev"], spec["energy_max_kev"], path=path, field=f"{where}.flat")
        if absolute and "rate_per_t_yr_kev" not in spec:
            raise InvalidConfig(
                "normalisation spectrum: true needs the flat spectrum's rate_per_t_yr_kev",
                path=path,
                field=f"{where}.flat.rate_per_t_yr_kev",
            )
    elif kind == "lines":
        if len(spec["energies_kev"]) != len(spec["intensities"]):
            raise InvalidConfig(
                f"{len(spec['energies_kev'])} energies but {len(spec['intensities'])} intensities",
                path=path,
                field=f"{where}.lines.intensities",
            )
        if not sum(spec["intensities"]) > 0:
            raise InvalidConfig("at least one intensity must be > 0", path=path, field=f"{where}.lines.intensities")
    elif kind == "builtin":
        allowed = BUILTIN_PARAMETERS[spec["name"]]
        for key in spec:
            if key != "name" and key not in allowed:
                raise InvalidConfig(
                    f"not a parameter of the built-in spectrum {spec['name']} ({', '.join(allowed)})",
                    path=path,
                    field=f"{where}.builtin.{key}",
                )
        if absolute and spec["name"] not in ABSOLUTE_BUILTINS:
            raise InvalidConfig(
                f"{spec['name']} is a spectrum shape, not a rate: normalise it with rate_per_t_yr or expected_events",
                path=path,
                field=f"{where}.builtin.name",
            )
