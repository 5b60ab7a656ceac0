#!/usr/bin/env bash
# up.sh: Quick start, step one. Installs what is missing, builds, and starts a single-node weft
# in the foreground with its embedded default: data in ./weft-data, clients on 127.0.0.1:7400.
# Extra arguments go to weftd (see docs/operations.md). Stop it with Ctrl-C (a clean stop).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/deploy/install-deps.sh"
"$here/deploy/build.sh"
exec "$here/build/node/weftd" "$@"
