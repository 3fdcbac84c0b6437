# The configuration's schema check before anything else (Snakefile): one line and exit status 2 for bad input.
import json
import sys

import jsonschema


def exit_if_invalid(cfg, files):
    """A schema-invalid configuration: one line naming the key as a JSON path and the files merged, exit status 2
    (the CLI's convention), before Snakemake's validate() in the Snakefile (which also fills in the schema's
    defaults) prints a traceback and the schema.  jsonschema comes with Snakemake: nothing of the project's
    environment is needed (REANA)."""
    # the JSON path as dmpreserve.schema.json_path renders it (the Snakefile cannot import dmpreserve: keep in step)
    with open("schemas/config.schema.json", encoding="utf-8") as f:
        schema = json.load(f)
    errors = [
        ("$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in e.absolute_path), e.message)
        for e in jsonschema.validators.validator_for(schema)(schema).iter_errors(cfg)
    ]
    if errors:
        where, message = min(errors)
        sys.stderr.write(f"invalid configuration ({' + '.join(files)}): {where}: {message}\n")
        sys.exit(2)
