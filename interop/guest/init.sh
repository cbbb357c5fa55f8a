#!/bin/bash
# PID 1 of the interop guest VM (installed as /ras-init by `vm.sh build`).
#
# Mounts the basics, loads the PPP/PPTP/L2TP/IPsec modules, configures eth0
# (address from the kernel command line: ras.ip=A.B.C.D/NN), mounts the host's share
# directory (9p tag "share") on /mnt/share, runs /mnt/share/cmd.sh with its output in
# /mnt/share/out.log and its exit status in /mnt/share/rc, then powers off.
# Markers on the serial console: RAS-INTEROP-BOOTED, RAS-INTEROP-DONE.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /run /tmp /var/run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
hostname ras-interop-guest

modprobe -qa virtio_net 9p 9pnet_virtio ppp_generic ppp_async ppp_synctty ppp_deflate bsd_comp ppp_mppe \
    pppox pptp gre l2tp_core l2tp_netlink l2tp_ppp l2tp_ip esp4 ah4 xfrm_user af_key xfrm4_tunnel tunnel4 \
    ipcomp authenc tun 2>/dev/null

addr=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^ras\.ip=//p')
ip link set lo up
ip link set eth0 up 2>/dev/null && [ -n "$addr" ] && ip addr add "$addr" dev eth0

mkdir -p /mnt/share
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /mnt/share 2>/dev/null
echo "RAS-INTEROP-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"

if [ -f /mnt/share/cmd.sh ]; then
    bash /mnt/share/cmd.sh >/mnt/share/out.log 2>&1 </dev/null
    echo $? >/mnt/share/rc
fi
sync
echo "RAS-INTEROP-DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
echo 1 >/proc/sys/kernel/sysrq
echo o >/proc/sysrq-trigger 2>/dev/null
sleep 5
