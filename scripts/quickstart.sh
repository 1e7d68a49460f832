#!/usr/bin/env bash
# The quickstart: install what is missing, build, and run configs/quickstart.yaml on the
# devpile slice shipped in data/devpile-mini (k=4 experts vs a dense baseline).
# Output goes to ${OUT:-out/quickstart}; rerunning resumes and skips finished stages.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/bin/cbtm run configs/quickstart.yaml --out "${OUT:-out/quickstart}" "$@"
