#!/usr/bin/env bash
# The ras interop VM: a throw-away Debian 12 guest holding real third-party VPN servers
# (sstpd, pptpd, xl2tpd + strongSwan IKEv1, strongSwan IKEv2, a TCP echo service) for
# testing our clients against implementations we did not write.  See interop/README.md.
#
#   vm.sh build            build the guest image once (cached in $RAS_INTEROP_STATE/image)
#   vm.sh rebuild          delete the cached image and build it again
#   vm.sh start            boot the VM in the background, start the servers, wait until they
#                          answer, print the facts and write them to $RAS_INTEROP_STATE/servers.env
#   vm.sh stop             power the VM off (by its recorded PID), remove the namespace
#   vm.sh status           exit 0 and print servers.env if the VM runs, else exit 1
#   vm.sh run 'CMD...'     boot, run CMD (bash, root) in the guest, print its output, power
#                          off; exit status = CMD's (125: the guest did not run it)
#
# The host needs qemu-system-x86, debootstrap, e2fsprogs, iproute2, python3-pip,
# python3-dev and gcc (ci-start.sh installs them).  Runs as root.
#
# Environment (all optional):
#   RAS_INTEROP_STATE          state dir                              [/var/tmp/ras-interop]
#   RAS_INTEROP_NS             network namespace                      [rasi]
#   RAS_INTEROP_MIRROR         Debian archive for debootstrap         [read from the apt sources]
#   RAS_INTEROP_SERVERS        servers to start                       ["sstp pptp l2tp ikev2 echo"]
#   RAS_INTEROP_USERS          extra PPP/EAP users "u1:p1 u2:p2" (test:test123 is always there)
#   RAS_INTEROP_AUTH           PPP auth required, any of mschapv2 mschap chap pap eap [mschapv2]
#   RAS_INTEROP_MPPE           require|optional|none for every PPP server
#                              [per server: PPTP require, SSTP none, L2TP none]
#   RAS_INTEROP_PPTP_MPPE, RAS_INTEROP_SSTP_MPPE, RAS_INTEROP_L2TP_MPPE   the same, per server
#   RAS_INTEROP_IPV6           1 = pppd negotiates IPv6CP too         [0]
#   RAS_INTEROP_PSK            IPsec PSK (L2TP/IPsec and IKEv2-PSK)    [ras-interop-psk]
#   RAS_INTEROP_IKE_PSK_ID     identity of an IKEv2-PSK client        [psk@ras-interop]
#   RAS_INTEROP_LIFETIME       the guest powers itself off after N s  [7200]
#   RAS_INTEROP_READY_TIMEOUT  seconds `start` waits for the servers  [400]
#   RAS_INTEROP_MEM            guest memory, MiB                      [1024]
#   RAS_INTEROP_ACCEL          kvm|tcg                                [tcg unless plain KVM works]
#   RAS_INTEROP_OWNER_PID      `start`: the VM serves this process; it stops RAS_INTEROP_LINGER
#                              s after the last such process exits (the Rust crate sets it).
#                              Without it, `start` pins the VM: it runs until `vm.sh stop`
#   RAS_INTEROP_LINGER         seconds an owned VM outlives its last owner   [120]
. "$(dirname "$0")/lib.sh"

IMG=$STATE/image
ROOTFS=$IMG/rootfs
SHARE=$STATE/share
QPID=$STATE/qemu.pid
WPID=$STATE/watch.pid
ENV_OUT=$STATE/servers.env
SSTPD_VERSION=0.6.0

# Debian packages of the guest.  pptp-linux and sstp-client are the real clients that
# the server-side interop tests run in the guest against `ras server` (guest jobs, see
# servers.sh); sstpd also uses sstp-client's pppd plugin to verify the crypto binding.
GUEST_PKGS=linux-image-amd64,kmod,udev,iproute2,iputils-ping,procps,psmisc,ca-certificates,openssl,netcat-openbsd,tcpdump,ppp,pptpd,xl2tpd,strongswan,strongswan-swanctl,libcharon-extra-plugins,libcharon-extauth-plugins,libstrongswan-standard-plugins,libsstp-api-0,python3,python3-venv,pptp-linux,sstp-client
# The rootfs is rebuilt when this changes; the image (rootfs + /ras-init) when init.sh changes.
ROOTFS_STAMP="$GUEST_PKGS|sstpd-$SSTPD_VERSION|2"

# ---------------------------------------------------------------------------------- build

chroot_run() {   # chroot_run CMD: run a shell command in the rootfs, /proc mounted
    mount --bind /proc "$ROOTFS/proc"
    local rc=0
    chroot "$ROOTFS" sh -c "$1" >>"$IMG/build.log" 2>&1 || rc=$?
    umount "$ROOTFS/proc"
    return $rc
}

image_stamp() { echo "$ROOTFS_STAMP|init-$(sha256sum "$INTEROP_DIR/guest/init.sh" | cut -c1-16)"; }
image_ok() {
    [ -s "$IMG/root.img" ] && [ -s "$IMG/vmlinuz" ] && [ -s "$IMG/initrd.img" ] \
        && [ "$(cat "$IMG/image.stamp" 2>/dev/null)" = "$(image_stamp)" ]
}

build() {
    if image_ok; then ri_log "guest image already built ($IMG)"; return 0; fi
    ri_apt_install "${HOST_PKGS[@]}"
    local t0=$SECONDS
    mkdir -p "$IMG"
    if [ "$(cat "$IMG/rootfs.stamp" 2>/dev/null)" != "$ROOTFS_STAMP" ]; then
        build_rootfs
        echo "$ROOTFS_STAMP" >"$IMG/rootfs.stamp"
    fi
    install -m 0755 "$INTEROP_DIR/guest/init.sh" "$ROOTFS/ras-init"
    cp "$ROOTFS"/boot/vmlinuz-* "$IMG/vmlinuz"
    cp "$ROOTFS"/boot/initrd.img-* "$IMG/initrd.img"
    ri_log "making the ext4 image"
    rm -f "$IMG/root.img"
    local size_mb=$(( $(du -sm "$ROOTFS" | cut -f1) + 384 ))
    mkfs.ext4 -q -F -L rasroot -d "$ROOTFS" "$IMG/root.img" "${size_mb}M" || ri_die "mkfs.ext4 failed"
    image_stamp >"$IMG/image.stamp"
    ri_log "guest image built in $((SECONDS - t0)) s: $(du -sh "$IMG/root.img" | cut -f1), kernel $(ls "$ROOTFS/lib/modules")"
}

build_rootfs() {
    local mirror; mirror=$(ri_debian_mirror)
    rm -rf "$ROOTFS" "$IMG/rootfs.stamp"
    : >"$IMG/build.log"
    ri_log "debootstrap bookworm from the machine's Debian mirror -> $ROOTFS (log: $IMG/build.log)"
    # Two stages so that policy-rc.d is in place before any package is configured: no
    # daemon (pptpd, xl2tpd, charon) may start in the chroot, i.e. on the host's network.
    debootstrap --foreign --variant=minbase --include="$GUEST_PKGS" bookworm "$ROOTFS" "$mirror" >>"$IMG/build.log" 2>&1 \
        || { tail -30 "$IMG/build.log" >&2; ri_die "debootstrap failed (see $IMG/build.log)"; }
    printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"; chmod +x "$ROOTFS/usr/sbin/policy-rc.d"
    chroot "$ROOTFS" /debootstrap/debootstrap --second-stage >>"$IMG/build.log" 2>&1 \
        || { tail -30 "$IMG/build.log" >&2; ri_die "debootstrap second stage failed (see $IMG/build.log)"; }

    # sstp-pppd-plugin.so from the sstp-client package (downloaded with the host's apt:
    # the host is the same Debian release).
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root sstp-client </dev/null >>"$IMG/build.log" 2>&1) \
        || { rm -rf "$tmp"; ri_die "apt-get download sstp-client failed"; }
    dpkg-deb -x "$tmp"/sstp-client_*.deb "$tmp/x"
    local plugdir; plugdir=$(ls -d "$ROOTFS"/usr/lib/pppd/2.* | head -1)
    cp "$tmp"/x/usr/lib/pppd/*/sstp-pppd-plugin.so "$plugdir/" || { rm -rf "$tmp"; ri_die "no sstp-pppd-plugin.so in sstp-client"; }
    rm -rf "$tmp"

    install_sstpd

    # A small initramfs (only what mounting the virtio root needs) unpacks faster under TCG.
    echo 'MODULES=list' >"$ROOTFS/etc/initramfs-tools/conf.d/ras-interop"
    printf '%s\n' virtio_pci virtio_blk ext4 >>"$ROOTFS/etc/initramfs-tools/modules"
    chroot_run 'update-initramfs -u -k all' || ri_die "update-initramfs failed (see $IMG/build.log)"

    : >"$ROOTFS/etc/ppp/options"     # every pppd option is set per server
    echo 'nameserver 127.0.0.1' >"$ROOTFS/etc/resolv.conf"
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc "$ROOTFS"/usr/share/man
}

# sstpd: PyPI sstp-server 0.6.0 in a venv in the guest.  Its C codec lacks PY_SSIZE_T_CLEAN
# and passes int lengths to "y#", so on Python 3.11 it crashes at the first PPP frame.  The
# sdist is patched and the wheel built on the host with Debian's python3 (the same 3.11 as
# the guest), then installed offline into the guest's venv.
install_sstpd() {
    local w=$STATE/wheels py=/usr/bin/python3 hv gv
    mkdir -p "$w"
    if ! ls "$w"/sstp_server-$SSTPD_VERSION-*.whl >/dev/null 2>&1; then
        hv=$($py -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        gv=$(chroot "$ROOTFS" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        [ "$hv" = "$gv" ] || ri_die "host $py is $hv, the guest's python3 is $gv: cannot build a matching sstp-server wheel"
        ri_log "building the sstp-server $SSTPD_VERSION wheel (patched for Python 3.11)"
        rm -rf "$w/src"; mkdir -p "$w/src"
        $py -m pip download -q --no-deps --no-binary :all: "sstp-server==$SSTPD_VERSION" -d "$w/src" >"$IMG/pip.log" 2>&1 \
            || { cat "$IMG/pip.log" >&2; ri_die "pip download sstp-server==$SSTPD_VERSION failed"; }
        tar -xzf "$w/src/sstp-server-$SSTPD_VERSION.tar.gz" -C "$w/src"
        local c=$w/src/sstp-server-$SSTPD_VERSION/sstpd/codecmodule.c
        sed -i -e '1i #define PY_SSIZE_T_CLEAN' \
               -e 's/Py_BuildValue("y#", buffer, pos)/Py_BuildValue("y#", buffer, (Py_ssize_t) pos)/' \
               -e 's/self->frame_buf, self->frame_buf_pos - 2)/self->frame_buf, (Py_ssize_t) (self->frame_buf_pos - 2))/' "$c"
        grep -q '(Py_ssize_t) pos' "$c" && grep -q '(Py_ssize_t) (self->frame_buf_pos - 2)' "$c" \
            || ri_die "the sstp-server patch did not apply"
        $py -m pip wheel -q --no-deps "$w/src/sstp-server-$SSTPD_VERSION" -w "$w" >>"$IMG/pip.log" 2>&1 \
            || { tail -20 "$IMG/pip.log" >&2; ri_die "building the sstp-server wheel failed"; }
    fi
    mkdir -p "$ROOTFS/opt/wheels"
    cp "$w"/sstp_server-$SSTPD_VERSION-*.whl "$ROOTFS/opt/wheels/"
    chroot_run 'python3 -m venv /opt/sstpd && /opt/sstpd/bin/pip install -q --no-index /opt/wheels/sstp_server-*.whl' \
        || { tail -20 "$IMG/build.log" >&2; ri_die "installing sstp-server into the guest failed"; }
}

# ---------------------------------------------------------------------------------- boot

vm_running() {   # the recorded qemu runs (and is ours: its command line names our image)
    ri_pid_alive "$QPID" && tr '\0' ' ' <"/proc/$(cat "$QPID")/cmdline" 2>/dev/null | grep -qF "$IMG/root.img"
}

check_word() {   # check_word NAME VALUE REGEX: refuse values that would need quoting
    [[ "$2" =~ $3 ]] || ri_die "$1: bad value '$2'"
}

# prepare_share: the guest's /mnt/share with cmd.sh (variables + the command) and the scripts.
prepare_share() {   # prepare_share DIR CMD
    local dir=$1 cmd=$2
    mkdir -p "$dir"
    rm -rf "$dir"/{cmd.sh,rc,out.log,console.log,ready,stop,guest.env,pki,logs,jobs}
    make_pki "$STATE/pki"
    mkdir -p "$dir/pki"; cp "$STATE"/pki/{ca.pem,server.pem,server.key} "$dir/pki/"
    local users="test:test123 ${RAS_INTEROP_USERS:-}" up
    for up in $users; do check_word RAS_INTEROP_USERS "$up" '^[A-Za-z0-9._@-]+:[A-Za-z0-9._@%+=,:!#^*()-]+$'; done
    local servers=${RAS_INTEROP_SERVERS:-sstp pptp l2tp ikev2 echo} s
    for s in $servers; do check_word RAS_INTEROP_SERVERS "$s" '^(sstp|pptp|l2tp|ikev2|echo)$'; done
    local a; for a in ${RAS_INTEROP_AUTH:-mschapv2}; do check_word RAS_INTEROP_AUTH "$a" '^(mschapv2|mschap|chap|pap|eap)$'; done
    local m
    for m in "${RAS_INTEROP_MPPE:-}" "${RAS_INTEROP_PPTP_MPPE:-}" "${RAS_INTEROP_SSTP_MPPE:-}" "${RAS_INTEROP_L2TP_MPPE:-}"; do
        [ -z "$m" ] || check_word RAS_INTEROP_MPPE "$m" '^(require|optional|none)$'
    done
    local mppe=${RAS_INTEROP_MPPE:-}
    local psk=${RAS_INTEROP_PSK:-ras-interop-psk} pskid=${RAS_INTEROP_IKE_PSK_ID:-psk@ras-interop}
    check_word RAS_INTEROP_PSK "$psk" '^[A-Za-z0-9._@%+=,:!#^*()-]+$'
    check_word RAS_INTEROP_IKE_PSK_ID "$pskid" '^[A-Za-z0-9._@-]+$'
    {
        echo '# written by vm.sh: the servers options, then the command'
        printf 'export %s=%q\n' \
            SERVERS "$servers" USERS "$(echo $users)" AUTH "${RAS_INTEROP_AUTH:-mschapv2}" \
            PPTP_MPPE "${RAS_INTEROP_PPTP_MPPE:-${mppe:-require}}" SSTP_MPPE "${RAS_INTEROP_SSTP_MPPE:-${mppe:-none}}" \
            L2TP_MPPE "${RAS_INTEROP_L2TP_MPPE:-${mppe:-none}}" IPV6 "${RAS_INTEROP_IPV6:-0}" \
            PSK "$psk" IKE_PSK_ID "$pskid" LIFETIME "${RAS_INTEROP_LIFETIME:-7200}" HOST_IP "$HOST_IP" HOST_NS "$NS"
        echo 'cd /mnt/share'
        printf '%s\n' "$cmd"
    } >"$dir/cmd.sh"
    cp "$INTEROP_DIR"/guest/servers.sh "$INTEROP_DIR"/guest/probe.py "$dir/"
}

# make_pki DIR: a fresh CA and a server certificate for the guest (SSTP's TLS and IKEv2),
# made on the host at every start (natively: milliseconds, against seconds under TCG).
# The CA key stays on the host (tests may sign client certificates with it).
make_pki() {
    local d=$1
    rm -rf "$d"; mkdir -p "$d"; chmod 700 "$d"
    ( cd "$d"
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ras interop CA" -keyout ca.key -out ca.pem \
          -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
      openssl req -newkey rsa:2048 -nodes -subj "/CN=$GUEST_IP" -keyout server.key -out server.csr
      # 1.3.6.1.5.5.8.2.2: the IKE-intermediate EKU that Windows IKEv2 clients look for
      printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,1.3.6.1.5.5.8.2.2\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
          "IP:$GUEST_IP,IP:127.0.0.1,DNS:ras-interop-guest" >server.ext
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile server.ext -out server.pem
    ) >"$STATE/pki.log" 2>&1 || { cat "$STATE/pki.log" >&2; ri_die "making the CA and server certificate failed"; }
}

pick_accel() {
    if [ -n "${RAS_INTEROP_ACCEL:-}" ]; then echo "$RAS_INTEROP_ACCEL"; return; fi
    # KVM only if the CPU shows vmx/svm and /dev/kvm is ordinary KVM: a paravirtual nested
    # KVM (kvm_pvm) hangs a stock kernel early in boot.
    if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo && [ ! -d /sys/module/kvm_pvm ]; then echo kvm; else echo tcg; fi
}

boot() {   # boot SHARE_DIR: start qemu daemonized in the namespace, PID in $QPID
    local dir=$1 accel; accel=$(pick_accel)
    local cpu=max acc=tcg,thread=multi,tb-size=256
    [ "$accel" = kvm ] && { cpu=host; acc=kvm; }
    if ip -n "$NS" link show "$TAP" | grep -q LOWER_UP; then
        ri_die "$TAP in namespace $NS is in use by another VM (vm.sh stop, or another RAS_INTEROP_NS)"
    fi
    rm -f "$QPID"
    ri_log "booting the guest (accel=$accel, namespace $NS)"
    ip netns exec "$NS" qemu-system-x86_64 -name ras-interop -machine q35 -accel "$acc" -cpu "$cpu" -smp 2 \
        -m "${RAS_INTEROP_MEM:-1024}" -no-reboot -nodefaults -display none -monitor none \
        -serial "file:$dir/console.log" -daemonize -pidfile "$QPID" \
        -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" \
        -append "root=LABEL=rasroot rw console=ttyS0 quiet loglevel=3 init=/ras-init panic=-1 net.ifnames=0 ras.ip=$GUEST_IP/24" \
        -drive "file=$IMG/root.img,if=virtio,format=raw,snapshot=on" \
        -netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no" -device virtio-net-pci,netdev=n0,mac=52:54:00:77:00:02 \
        -virtfs "local,path=$dir,mount_tag=share,security_model=none,id=share" \
        -device virtio-rng-pci </dev/null >"$STATE/qemu.log" 2>&1 9>&- \
        || { cat "$STATE/qemu.log" >&2; ri_die "qemu failed to start"; }
    [ -s "$QPID" ] || ri_die "qemu wrote no pid file"
}

wait_exit() {   # wait_exit LIMIT_S: wait for qemu to exit, kill it after LIMIT_S
    local limit=$1 t0=$SECONDS pid
    pid=$(cat "$QPID" 2>/dev/null) || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if (( SECONDS - t0 > limit )); then
            ri_log "guest still running after $limit s: killing qemu (pid $pid)"; ri_kill_pidfile "$QPID"; break
        fi
        sleep 0.2
    done
    rm -f "$QPID"
}

print_facts() {
    sed -e 's/^/  /' "$ENV_OUT"
    echo "  # use: ip netns exec $NS <client> $GUEST_IP ...   (or RAS_INTEROP_VM_ENV=$ENV_OUT for the Rust tests)"
}

# write_env T_READY_MS: $STATE/servers.env = host facts + what the guest reported.
write_env() {
    cp "$STATE/pki/ca.pem" "$STATE/ca.pem"
    {
        echo "# ras interop VM, written by vm.sh start at $(date -Is)"
        printf '%s="%s"\n' NS "$NS" HOST_IP "$HOST_IP" GUEST_IP "$GUEST_IP" STATE "$STATE" \
            CA_PEM "$STATE/ca.pem" CA_KEY "$STATE/pki/ca.key" QEMU_PID "$(cat "$QPID")" PPTP_PORT 1723 L2TP_PORT 1701 IKE_PORT 500 IKE_NATT_PORT 4500 \
            READY_MS "$1"
        grep -E '^[A-Z][A-Z0-9_]*="[^"$`\\]*"$' "$SHARE/guest.env"
    } >"$ENV_OUT.tmp"
    mv "$ENV_OUT.tmp" "$ENV_OUT"
}

# Owners: a VM started for test processes (RAS_INTEROP_OWNER_PID) is shared by every
# test process that asks for it while it runs: each registers as $OWNERS/PID, under the
# lock. One watcher stops the VM once no owner has lived for $LINGER s, taking the lock
# first and checking again, so a test binary that starts right after another one ended
# either shares the running VM (and keeps it up) or waits for the stop and boots a new
# one: never a VM that is powered off under it. `cargo test --workspace` runs the test
# binaries one after another, and each asks for the VM.
OWNERS=$STATE/owners
PINNED=$STATE/pinned
LINGER=${RAS_INTEROP_LINGER:-120}

add_owner() {   # under the lock: register RAS_INTEROP_OWNER_PID, or pin the VM without one
    local owner=${RAS_INTEROP_OWNER_PID:-}
    if [ -z "$owner" ]; then
        touch "$PINNED"; return 0
    fi
    mkdir -p "$OWNERS"; touch "$OWNERS/$owner"
    if [ -e "$PINNED" ]; then
        ri_log "the VM was started by hand or by CI: it keeps running after process $owner exits"
    elif ri_pid_alive "$WPID"; then
        ri_log "process $owner shares the VM; it stops $LINGER s after its last user exits"
    else
        nohup "$INTEROP_DIR/vm.sh" watch </dev/null >"$STATE/watch.log" 2>&1 9>&- &
        echo $! >"$WPID"
        ri_log "the VM stops $LINGER s after process $owner and every later user exit (watcher pid $!)"
    fi
}

live_owners() {   # prints how many registered owners still run; forgets the others
    local f n=0
    for f in "$OWNERS"/*; do
        [ -e "$f" ] || continue
        if kill -0 "${f##*/}" 2>/dev/null; then n=$((n + 1)); else rm -f "$f"; fi
    done
    echo "$n"
}

do_watch() {   # the watcher: stop the VM once its owners are gone for LINGER s
    local idle=0
    while vm_running; do
        if [ "$(live_owners)" -gt 0 ]; then idle=0; else idle=$((idle + 1)); fi
        if [ "$idle" -ge "$LINGER" ]; then
            exec 9>"$STATE/lock"
            flock -w 900 9 || { ri_log "watcher: cannot take $STATE/lock"; exit 1; }
            # A test process may have registered while we waited for the lock.
            if [ "$(live_owners)" -gt 0 ]; then exec 9>&-; idle=0; continue; fi
            ri_log "watcher: no test process uses the VM any more: stopping it"
            stop_vm
            exit 0
        fi
        sleep 1
    done
    rm -f "$WPID"
}

do_start() {
    ri_need_root
    mkdir -p "$STATE"
    local owner=${RAS_INTEROP_OWNER_PID:-}
    if [ -n "$owner" ] && ! { [[ "$owner" =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null; }; then
        ri_die "RAS_INTEROP_OWNER_PID=$owner is not a running process"
    fi
    exec 9>"$STATE/lock"
    flock -w 900 9 || ri_die "another vm.sh holds $STATE/lock"
    if vm_running && [ -e "$SHARE/ready" ] && [ -s "$ENV_OUT" ]; then
        ri_log "VM already running (qemu pid $(cat "$QPID")); options apply at boot: vm.sh stop first to change them"
        add_owner
        print_facts; return 0
    fi
    vm_running && ri_die "a VM is running (qemu pid $(cat "$QPID")) but never became ready: vm.sh stop"
    build
    rm -f "$ENV_OUT" "$PINNED"; rm -rf "$OWNERS"
    prepare_share "$SHARE" 'export HOLD=stop; exec bash /mnt/share/servers.sh'
    "$INTEROP_DIR/netns.sh" up
    local t0 limit=${RAS_INTEROP_READY_TIMEOUT:-400} pid; t0=$(date +%s%N)
    boot "$SHARE"
    pid=$(cat "$QPID")
    add_owner
    while kill -0 "$pid" 2>/dev/null && [ ! -e "$SHARE/ready" ]; do
        if (( $(ri_ms "$t0") > limit * 1000 )); then
            tail -20 "$SHARE/out.log" "$SHARE/console.log" >&2 2>/dev/null || true
            start_failed "the guest was not ready after $limit s"
        fi
        sleep 0.2
    done
    if [ ! -e "$SHARE/ready" ]; then
        tail -30 "$SHARE/out.log" "$SHARE/console.log" >&2 2>/dev/null || true
        start_failed "the guest stopped (rc=$(cat "$SHARE/rc" 2>/dev/null || echo none)) before its servers were ready"
    fi
    local ms; ms=$(ri_ms "$t0")
    write_env "$ms"
    sed -e 's/^/  /' "$SHARE/out.log" >&2
    ri_log "guest ready in $ms ms (qemu pid $pid); facts in $ENV_OUT:"
    print_facts
}

start_failed() {   # after boot: kill qemu and the watcher, remove the namespace, fail
    ri_kill_pidfile "$WPID"
    ri_kill_pidfile "$QPID"
    "$INTEROP_DIR/netns.sh" down || true
    ri_die "$*"
}

do_stop() {
    ri_need_root
    mkdir -p "$STATE"
    exec 9>"$STATE/lock"
    flock -w 900 9 || ri_die "another vm.sh holds $STATE/lock"
    stop_vm
}

stop_vm() {   # under the lock: power off, forget owners, remove the namespace
    if [ -s "$WPID" ] && [ "$(cat "$WPID")" != "$$" ]; then ri_kill_pidfile "$WPID"; fi
    rm -f "$WPID" "$PINNED"; rm -rf "$OWNERS"
    if vm_running; then
        touch "$SHARE/stop"
        wait_exit 20
        ri_log "guest stopped; server logs in $SHARE/logs"
    else
        rm -f "$QPID"; ri_log "no VM running"
    fi
    rm -f "$ENV_OUT"
    "$INTEROP_DIR/netns.sh" down
}

do_run() {
    ri_need_root
    mkdir -p "$STATE"
    exec 9>"$STATE/lock"
    flock -w 900 9 || ri_die "another vm.sh holds $STATE/lock"
    vm_running && ri_die "a VM is already running (qemu pid $(cat "$QPID")): vm.sh stop first"
    build
    local dir=$STATE/run-share t0; t0=$(date +%s%N)
    prepare_share "$dir" "$*"
    "$INTEROP_DIR/netns.sh" up
    boot "$dir"
    wait_exit "${RAS_INTEROP_RUN_TIMEOUT:-600}"
    [ -f "$dir/out.log" ] && cat "$dir/out.log"
    local rc=125; [ -s "$dir/rc" ] && rc=$(cat "$dir/rc")
    ri_log "guest run took $(ri_ms "$t0") ms, rc=$rc"
    [ "$rc" = 125 ] && { tail -20 "$dir/console.log" >&2 2>/dev/null || true; }
    "$INTEROP_DIR/netns.sh" down
    return "$rc"
}

case "${1:-}" in
    build)   ri_need_root; mkdir -p "$STATE"; build ;;
    rebuild) ri_need_root; rm -rf "$IMG"; mkdir -p "$STATE"; build ;;
    start)   do_start ;;
    stop)    do_stop ;;
    watch)   do_watch ;;
    status)  if vm_running && [ -s "$ENV_OUT" ]; then echo "VM running (qemu pid $(cat "$QPID"))"; print_facts
             else echo "no VM running (state $STATE)"; exit 1; fi ;;
    run)     shift; [ $# -gt 0 ] || ri_die "usage: vm.sh run 'CMD...'"; rc=0; do_run "$@" || rc=$?; exit "$rc" ;;
    *) echo "usage: $0 build|rebuild|start|stop|status|run 'CMD...'" >&2; exit 2 ;;
esac
