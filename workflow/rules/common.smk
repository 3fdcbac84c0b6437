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


def with_dirs(command):
    """A rule's shell command, preceded by creating the directories of all its outputs and its log.

    REANA's Snakemake engine runs each job in a fresh pod without creating them; `dirname` takes several
    paths, so one mkdir covers every output.  `command` is formatted by Snakemake like any shell command.
    """
    return "mkdir -p $(dirname {output} {log}) && " + command
