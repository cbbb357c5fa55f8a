#!/usr/bin/env bash
# CI: power the interop VM off and remove its namespace (idempotent; safe in a trap).
# The servers' logs stay in $RAS_INTEROP_STATE/share/logs (default /var/tmp/ras-interop).
. "$(dirname "$0")/lib.sh"
ri_need_root
"$INTEROP_DIR/vm.sh" stop >&2
