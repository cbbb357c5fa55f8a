#!/usr/bin/env bash
# One-time setup for bench.sh (idempotent: ~4 min the first time on 2 cores, 0 s after).
#
#  1. Debian packages: strongSwan 5.9.8 (charon, swanctl, pki, plugins) for the
#     strongSwan responder and the libipsec client, iperf3, wireguard-go,
#     wireguard-tools, and what building strongSwan needs.  No daemon is started
#     (a policy-rc.d that says no is in place while apt-get runs).
#  2. strongSwan's load-tester plugin, which Debian does not package: the upstream
#     tarball of Debian's own strongSwan source package (apt-get source from the
#     Debian archive this machine's apt already uses, through a private source
#     list, so the system's apt configuration is untouched), built into
#     $RAS_IKEBENCH_DIR/sw-lt.  It is only the load generator (initiator); the
#     responders measured are Debian's charon and `ras server`.
#
#   scripts/ikev2-bench/setup.sh          (as root)
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
B=${RAS_IKEBENCH_DIR:-/var/tmp/ras-ikebench}
SW_VERSION=5.9.8
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
mkdir -p "$B/src"

pkgs="strongswan-charon strongswan-swanctl strongswan-pki libcharon-extra-plugins
      libcharon-extauth-plugins libstrongswan-standard-plugins libstrongswan-extra-plugins
      iperf3 wireguard-go wireguard-tools gcc make pkg-config libssl-dev libgmp-dev bzip2 python3"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    made=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made=1; fi
    apt-get update -qq || true
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing </dev/null || rc=$?
    [ $made = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "${rc:-0}" = 0 ] || { echo "apt-get install$missing failed" >&2; exit 1; }
fi
installed=$(dpkg-query -W -f='${Version}' strongswan-charon)
case $installed in
    "$SW_VERSION"-*) ;;
    *) echo "Debian's strongSwan is $installed, this script builds the load tester from $SW_VERSION" >&2; exit 1 ;;
esac

LT=$B/sw-lt
if [ ! -x "$LT/libexec/ipsec/charon" ] || [ ! -e "$LT/lib/ipsec/plugins/libstrongswan-load-tester.so" ]; then
    cd "$B/src"
    tarball=strongswan_$SW_VERSION.orig.tar.bz2
    if [ ! -s "$tarball" ]; then
        # The Debian archive this machine's apt uses, read from its apt sources
        # (the interop harness's ri_debian_mirror; RAS_INTEROP_MIRROR overrides).
        # In a subshell: interop/lib.sh sets traps and variables of its own.
        mirror=$(. "$HERE/../../interop/lib.sh"; ri_debian_mirror)
        mkdir -p apt-lists/partial
        echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main" >src.list
        apto=(-o "Dir::Etc::SourceList=$B/src/src.list" -o Dir::Etc::SourceParts=/nonexistent
              -o "Dir::State::Lists=$B/src/apt-lists")
        apt-get "${apto[@]}" update -qq
        # Only the .orig tarball is needed (Debian's patches are security fixes
        # that do not touch the load tester); a failing dpkg-source is fine.
        apt-get "${apto[@]}" source --download-only strongswan || true
        [ -s "$tarball" ] || { echo "could not fetch $tarball from $mirror" >&2; exit 1; }
    fi
    rm -rf "strongswan-$SW_VERSION" && tar xjf "$tarball"
    cd "strongswan-$SW_VERSION"
    echo "building strongSwan $SW_VERSION with the load tester into $LT (logs in $B/src)"
    ./configure --prefix="$LT" --sysconfdir="$LT/etc" --with-piddir="$LT/run" \
        --enable-load-tester --enable-openssl --enable-eap-mschapv2 --enable-eap-identity --enable-md4 \
        --disable-stroke --disable-scepclient --disable-updown --disable-resolve >../configure.log 2>&1
    nice -n 10 make -j"$(nproc)" >../make.log 2>&1
    make install >../install.log 2>&1
    mkdir -p "$LT/run"
fi
echo "setup ok: Debian strongSwan $installed, load-tester charon $LT/libexec/ipsec/charon"
