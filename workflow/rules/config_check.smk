# The configuration's schema check before anything else (Snakefile): one line and exit status 2 for bad input.
import difflib
import json
import sys

import jsonschema


def _did_you_mean(error):
    """'; 'band_pionts': did you mean 'band_points'?' for an unexpected key close to an allowed one (a typo)."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return ""
    allowed = [str(k) for k in error.schema.get("properties") or {}]
    hints = []
    for key in sorted(str(k) for k in error.instance if k not in allowed):
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
        if close:
            hints.append(f"{key!r}: did you mean {close[0]!r}?")
    return "; " + "; ".join(hints) if hints else ""


def exit_if_invalid(cfg, files):
    """A schema-invalid configuration: one line naming the key as a JSON path and the files merged, exit status 2
    (the CLI's convention), before Snakemake's validate() in the Snakefile (which also fills in the schema's
    defaults) prints a traceback and the schema.  jsonschema comes with Snakemake: nothing of the project's
    environment is needed (REANA)."""
    # the JSON path and the hint as dmpreserve.schema renders them (the Snakefile cannot import dmpreserve: keep in
    # step with json_path and _suggestion there)
    with open("schemas/config.schema.json", encoding="utf-8") as f:
        schema = json.load(f)
    errors = [
        ("$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in e.absolute_path), e.message + _did_you_mean(e))
        for e in jsonschema.validators.validator_for(schema)(schema).iter_errors(cfg)
    ]
    if errors:
        where, message = min(errors)
        sys.stderr.write(f"invalid configuration ({' + '.join(files)}): {where}: {message}\n")
        sys.exit(2)
