# Helpers shared by the workflow files (plain Python: the Snakefile cannot import dmpreserve or numpy).


def _grid_size(grid):
    if isinstance(grid, dict) and isinstance(grid.get("count"), int):
        return grid["count"]
    if isinstance(grid, list) and grid:
        return len(set(grid))
    return None


def _model_mass_grid(path):
    try:
        with open(path, encoding="utf-8") as stream:
            model = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError):
        return None
    return model.get("masses_gev") if isinstance(model, dict) else None


_LIMIT_MASSES = config["limits"]["masses_gev"]
N_LIMIT_MASSES = (len(set(_LIMIT_MASSES)) if _LIMIT_MASSES else
                  _grid_size(_model_mass_grid(SIGNAL_MODEL)) or int(config["signal"]["masses_gev"]["count"]))


# Toy stage (toys.smk): the Neyman threshold mode and the shape x shard scatter of the threshold table.
# Defaults as in dmpreserve.config.AnalysisConfig.statistics (keep in step).
_STATISTICS = config.get("statistics") or {}
NEYMAN_THRESHOLD = _STATISTICS.get("neyman_threshold", "asymptotic")
_TABLE = _STATISTICS.get("threshold_table") or {}
N_TABLE_SHAPES = len(_TABLE.get("reference_masses_gev", [8.0, 20.0, 100.0]))
N_TABLE_SHARDS = int(_TABLE.get("shards", 2))
THRESHOLD_TABLE = f"{R}/toys/threshold_table.json" if NEYMAN_THRESHOLD == "table" else None


def with_dirs(command):
    """A rule's shell command, preceded by creating the directories of all its outputs and its log.

    REANA's Snakemake engine runs each job in a fresh pod without creating them; `dirname` takes several
    paths, so one mkdir covers every output.  `command` is formatted by Snakemake like any shell command.
    """
    return f"mkdir -p $(dirname {{output}} {{log}}) && {command}"


# Unbinned likelihood (likelihood.unbinned): the fine templates of rule unbinned_templates (unbinned.smk), an input of
# limits_point; None without it (the rule is then never needed).
UNBINNED_TEMPLATES = f"{R}/likelihood/unbinned_templates.h5" if config["likelihood"].get("unbinned") else None
