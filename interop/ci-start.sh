#!/usr/bin/env bash
# CI: make the interop VM available to the test run.
#
#   eval "$(bash interop/ci-start.sh)"     # then: RAS_INTEROP_REQUIRED=1 cargo test ...
#
# Installs the host packages the harness needs, builds the guest image unless it is
# cached in $RAS_INTEROP_STATE (default /var/tmp/ras-interop), boots the VM and waits
# until every server answers.  Progress goes to stderr; stdout is one line,
#   export RAS_INTEROP_VM_ENV=<state>/servers.env
# which the Rust tests (crates/interop, Vm::shared) read instead of booting a VM of
# their own.  Exit status non-zero, with "[interop] ERROR: ..." on stderr, on failure.
# Stop the VM with interop/ci-stop.sh (e.g. from a trap).
. "$(dirname "$0")/lib.sh"
ri_need_root
t0=$SECONDS
ri_apt_install "${HOST_PKGS[@]}"
ri_log "host packages ready ($((SECONDS - t0)) s)"
t1=$SECONDS
"$INTEROP_DIR/vm.sh" build >&2
ri_log "guest image ready ($((SECONDS - t1)) s)"
t2=$SECONDS
"$INTEROP_DIR/vm.sh" start >&2
ri_log "VM ready ($((SECONDS - t2)) s; ci-start.sh took $((SECONDS - t0)) s in all)"
[ -s "$STATE/servers.env" ] || ri_die "vm.sh start wrote no $STATE/servers.env"
printf 'export RAS_INTEROP_VM_ENV=%q\n' "$STATE/servers.env"
