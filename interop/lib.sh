# Common functions of the ras interop harness. Source it; do not run it.
#
# Everything the harness makes lives under $RAS_INTEROP_STATE (default
# /var/tmp/ras-interop): the cached guest image, pid files, logs, the share
# directory the guest sees, and servers.env.  Processes are stopped by the PID
# recorded when they were started -- never by process name.
#
# Common environment:
#   RAS_INTEROP_STATE   state directory                     (default /var/tmp/ras-interop)
#   RAS_INTEROP_NS      network namespace of the VM's tap   (default rasi)
set -Eeuo pipefail

STATE=${RAS_INTEROP_STATE:-/var/tmp/ras-interop}
NS=${RAS_INTEROP_NS:-rasi}
INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Addresses on the link between the namespace and the guest (a /24 on the tap).
HOST_IP=10.77.0.1
GUEST_IP=10.77.0.2
TAP=rasi-tap0

# Debian packages the harness needs on the host: qemu (TCG), debootstrap and mkfs.ext4 for
# the image, pip + python3-dev + gcc to build the sstp-server wheel, openssl for the
# certificates (and the smoke test's s_client), iproute2 for the namespace; SoftEther VPN
# Server (runs on the host, not in the VM: softether.sh) for the second L2TP/IPsec server.
HOST_PKGS=(qemu-system-x86 debootstrap e2fsprogs iproute2 nftables util-linux python3 python3-pip python3-dev python3-venv gcc openssl ca-certificates softether-vpnserver softether-vpncmd)

ri_log() { printf '[interop %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
ri_die() { printf '[interop] ERROR: %s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
# Any command that fails outside a condition ends the script with this message.
trap 'rc=$?; printf "[interop] ERROR: %s: command failed (exit %s) at line %s: %s\n" "$(basename "$0")" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR

ri_need_root() { [ "$(id -u)" = 0 ] || ri_die "run as root (network namespaces, taps, debootstrap)"; }

ri_ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }   # ri_ms START_NS -> elapsed ms

# ri_apt_install PKG...: install missing Debian packages without starting any daemon.
ri_apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || ri_die "missing packages (${missing[*]}) and no apt-get"
    ri_log "apt-get install ${missing[*]}"
    local made_policy=0 rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
    fi
    ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >&2 \
      || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >&2; } \
      || rc=$?
    [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ $rc = 0 ] || ri_die "apt-get install ${missing[*]} failed"
}

# ri_debian_mirror: the Debian archive URL this machine's apt uses (for debootstrap).
# Read from the apt sources at run time (deb822 *.sources first, then one-line lists);
# RAS_INTEROP_MIRROR overrides.  -security and -updates suites are skipped, and a
# *.sources file other than debian.sources counts only if signed by the Debian key.
ri_debian_mirror() {
    if [ -n "${RAS_INTEROP_MIRROR:-}" ]; then echo "${RAS_INTEROP_MIRROR%/}"; return 0; fi
    local u="" f any
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        any=0; [ "${f##*/}" = debian.sources ] && any=1
        u=$(awk -v any="$any" 'BEGIN { RS = "" }
            { uri = ""; suites = ""; types = ""; key = ""; off = 0; n = split($0, L, "\n")
              for (i = 1; i <= n; i++) {
                  if (L[i] ~ /^URIs:/)            { split(L[i], w, /[ \t]+/); uri = w[2] }
                  if (L[i] ~ /^Suites:/)          suites = L[i]
                  if (L[i] ~ /^Types:/)           types = L[i]
                  if (L[i] ~ /^Signed-By:/)       key = L[i]
                  if (L[i] ~ /^Enabled:[ \t]*no/) off = 1 }
              if (uri != "" && !off && types ~ /[ \t]deb([ \t]|$)/ && suites ~ /[ \t]bookworm([ \t]|$)/ \
                  && (any || key ~ /debian-archive-keyring/)) { print uri; exit } }' "$f")
        [ -n "$u" ] && break
    done
    if [ -z "$u" ]; then
        u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {
                                     if ($(i+1) == "bookworm") { print $i; exit } else break } }')
    fi
    [ -n "$u" ] || ri_die "no Debian bookworm archive in the apt sources (set RAS_INTEROP_MIRROR)"
    echo "${u%/}"
}

# ri_pid_alive FILE: the PID recorded in FILE is running.
ri_pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ri_kill_pidfile FILE: stop the process whose PID is in FILE (TERM, KILL after 5 s).
ri_kill_pidfile() {
    local f=$1 pid i
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$f"
}
