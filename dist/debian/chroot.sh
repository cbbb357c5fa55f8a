#!/usr/bin/env bash
# Prints the path of a clean Debian bookworm system (debootstrap minbase,
# plus the package's Depends, adduser, iproute2 and procps, and systemd for
# `systemd-analyze verify`) to install the ras package into
# (crates/ras/tests/debian_package.rs).
#
# Built once per machine (a few minutes) and cached under
# /var/tmp/ras-interop/debian-bookworm; callers copy it before use so each
# install goes into a clean system. The mirror is the one this machine's apt
# already uses (/etc/apt/sources.list, /etc/apt/sources.list.d/*), never a
# host name written here. Needs root and debootstrap.
set -euo pipefail

cache_root=${RAS_DEBIAN_CHROOT_CACHE:-/var/tmp/ras-interop}
suite=bookworm
image=$cache_root/debian-$suite
include=systemd,adduser,iproute2,procps
# Holds $include: a changed list builds the image anew.
stamp=$image/.ras-chroot-complete

# The first URI that serves $suite itself (not -security/-updates), from
# deb822 .sources stanzas or one-line `deb URI SUITE ...` entries.
mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v suite="$suite" '
            /^[[:space:]]*$/ { if (uri != "" && has) { print uri; exit } uri = ""; has = 0; next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
            END { if (uri != "" && has) print uri }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v suite="$suite" '
            $1 == "deb" { u = 2; if ($2 ~ /^\[/) { while ($u !~ /\]$/) u++; u++ }
                          if ($(u + 1) == suite) print $u }' "$f"
    done
}

mkdir -p "$cache_root"
exec 9>"$cache_root/debian-$suite.lock"
flock 9
if [ "$(cat "$stamp" 2>/dev/null)" != "$include" ]; then
    url=$(mirror | head -n1)
    if [ -z "$url" ]; then
        echo "no apt source for $suite in /etc/apt/sources.list{,.d}" >&2
        exit 1
    fi
    rm -rf "$image.partial"
    echo "building the $suite chroot from $url (takes minutes, once per machine)" >&2
    debootstrap --variant=minbase --include="$include" "$suite" "$image.partial" "$url" >&2
    # The copies need not carry the downloaded archives.
    rm -rf "$image.partial/var/cache/apt/archives/"*.deb
    rm -rf "$image"
    mv "$image.partial" "$image"
    echo "$include" >"$stamp"
fi
echo "$image"
