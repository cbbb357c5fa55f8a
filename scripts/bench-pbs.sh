#!/usr/bin/env bash
# PBS hits/s: wrk against `ras pbs` and against nginx serving the same
# cabinet file, in the same run (the machine is noisy: compare the ratio).
#
#   scripts/bench-pbs.sh [SECONDS] [CONNECTIONS]
#
# Needs wrk and nginx (Debian: wrk, nginx-light) and a release build
# (cargo build --release -p ras; RAS=path overrides). nginx runs with a
# private configuration on a loopback port and is stopped at the end.
set -euo pipefail

secs=${1:-10}
conns=${2:-64}
ras=${RAS:-${CARGO_TARGET_DIR:-target}/release/ras}
[ -x "$ras" ] || { echo "no $ras: cargo build --release -p ras" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not installed" >&2; exit 1; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || { echo "nginx not installed" >&2; exit 1; }

tmp=$(mktemp -d /tmp/bench-pbs.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# A phone book whose full cabinet is about the seed's 5 KB.
root=$tmp/admin
mkdir -p "$root"
for i in $(seq 1 400); do
    printf '%d, %d, 0, POP %d, %d, 555-%04d, 9600, 56000, 0, 32, Dial%d\n' \
        "$i" $((1 + i % 40)) "$i" $((200 + i % 700)) $(((i * 7919) % 10000)) $((i % 9))
done > "$tmp/pops.txt"
"$ras" phonebook --root "$root" create Bench >/dev/null
"$ras" phonebook --root "$root" import Bench "$tmp/pops.txt" >/dev/null
"$ras" phonebook --root "$root" publish Bench >/dev/null

echo "bench-token" > "$tmp/token"
http_port=18480; https_port=18443; nginx_port=18481
"$ras" pbs --data "$tmp/pbs" --http 127.0.0.1:$http_port --https 127.0.0.1:$https_port \
    --post-token-file "$tmp/token" > "$tmp/pbs.out" 2>"$tmp/pbs.err" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$tmp/pbs.out" 2>/dev/null && break; sleep 0.1; done
fp=$(sed -n 's/.*fingerprint=\([^ ]*\).*/\1/p' "$tmp/pbs.out")
"$ras" phonebook --root "$root" post Bench --url https://127.0.0.1:$https_port \
    --token-file "$tmp/token" --fingerprint "$fp" >/dev/null

mkdir -p "$tmp/www"
cp "$root/Bench/1/full.cab" "$tmp/www/full.cab"
size=$(stat -c %s "$tmp/www/full.cab")
cat > "$tmp/nginx.conf" <<CONF
daemon off;
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/cb; proxy_temp_path $tmp/px; fastcgi_temp_path $tmp/fc;
    uwsgi_temp_path $tmp/uw; scgi_temp_path $tmp/sc;
    sendfile on; tcp_nopush on; keepalive_requests 1000000;
    server { listen 127.0.0.1:$nginx_port; root $tmp/www; }
}
CONF
"$nginx_bin" -p "$tmp" -c "$tmp/nginx.conf" &
pids+=($!)
sleep 0.5

rate() { wrk -t2 -c"$conns" -d"${secs}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
query="/pbserver/pbserver.dll?osarch=0&ostype=0&osver=1&cmver=1&lcid=1033&pbver=0&pb=Bench"
echo "cabinet: $size bytes; wrk -t2 -c$conns -d${secs}s; $(nproc) CPUs"
echo "ras pbs  query (answer)     : $(rate "http://127.0.0.1:$http_port$query") hits/s"
echo "ras pbs  GET full.cab       : $(rate "http://127.0.0.1:$http_port/pbserver/data/Bench/1/full.cab") hits/s"
echo "nginx    GET full.cab       : $(rate "http://127.0.0.1:$nginx_port/full.cab") hits/s"
echo "ras pbs  query, no update   : $(rate "http://127.0.0.1:$http_port${query/pbver=0/pbver=1}") hits/s"
