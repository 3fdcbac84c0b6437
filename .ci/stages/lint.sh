#!/usr/bin/env bash
# CI stage "lint" (budget 1 min on 2 cores): `make lint` on the checkout, with the tools pinned in
# env/requirements-dev.txt (installed into .venv by `make test` before this stage):
#
#   ruff check          pycodestyle, pyflakes (unused imports/variables), import order, pyupgrade,
#                       bugbear ... ([tool.ruff] in pyproject.toml)
#   ruff format --check the code is formatted (`make format` rewrites it)
#   vulture             dead code in src/ ([tool.vulture])
#   lint-imports        the layers of src/dmpreserve ([tool.importlinter]): no upward imports, no
#                       imports between independent siblings
#   snakemake --lint    the workflow
#   pip check           the venv's pins are consistent
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
make lint
