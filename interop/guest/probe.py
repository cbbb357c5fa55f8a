#!/usr/bin/env python3
"""First-message probes of the interop servers (the guest's self-check uses them).

usage: probe.py sstp HOST PORT CAFILE   TLS (certificate verified against CAFILE, hostname
                                        not checked), SSTP_DUPLEX_POST -> expect HTTP 200
       probe.py pptp HOST [PORT]        Start-Control-Connection-Request -> expect a Reply, result 1
       probe.py ike v1|v2 HOST [PORT]   IKEv1 Main Mode message 1 (PSK) / IKEv2 IKE_SA_INIT
                                        -> expect the responder to choose a proposal
       probe.py echo HOST PORT          send a line, expect it back
       probe.py multi 'PROBE ARGS' ...  several of the above in one process (python starts
                                        slowly under TCG); exit 0 only if all passed
Exit status 0 when the server answered as expected; prints one line either way."""
import os
import socket
import ssl
import struct
import sys
import uuid

SSTP_URI = "/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/"


def sstp(host, port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    s = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10))
    s.sendall(("SSTP_DUPLEX_POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 18446744073709551615\r\n"
               "SSTPCORRELATIONID: {%s}\r\n\r\n" % (SSTP_URI, host, str(uuid.uuid4()).upper())).encode())
    head = s.recv(4096).split(b"\r\n")[0].decode("latin-1")
    print("sstp : TLS %s, certificate verified, SSTP_DUPLEX_POST -> %s" % (s.version(), head))
    return head.startswith("HTTP/1.1 200")


def pptp(host, port=1723):
    s = socket.create_connection((host, int(port)), timeout=10)
    # RFC 2637 2.1: length, message type 1 (control), magic cookie, SCCRQ (1), reserved,
    # version 1.0, reserved, framing caps, bearer caps, max channels, firmware, host, vendor
    s.sendall(struct.pack("!HHIHHHHIIHH64s64s", 156, 1, 0x1A2B3C4D, 1, 0, 0x0100, 0, 1, 1, 0, 0,
                          b"probe", b"ras-interop"))
    d = s.recv(156)
    ok = len(d) >= 16 and struct.unpack("!H", d[8:10])[0] == 2 and d[14] == 1
    print("pptp : Start-Control-Connection-Reply, result %s" % (d[14] if len(d) > 14 else "none"))
    return ok


def _payload(next_type, body):
    return struct.pack("!BBH", next_type, 0, 4 + len(body)) + body


def _ikev1(spi):
    def transform(num, last, enc, keylen, group):
        attrs = struct.pack("!HH", 0x8001, enc)
        if keylen:
            attrs += struct.pack("!HH", 0x800e, keylen)
        attrs += struct.pack("!HHHHHHHHHH", 0x8002, 2, 0x8003, 1, 0x8004, group, 0x800b, 1, 0x800c, 28800)
        return _payload(0 if last else 3, struct.pack("!BBH", num, 1, 0) + attrs)
    ts = [(7, 256, 14), (7, 256, 2), (5, 0, 14), (5, 0, 2)]   # AES-256 / 3DES x MODP-2048 / 1024
    trans = b"".join(transform(i + 1, i == len(ts) - 1, *t) for i, t in enumerate(ts))
    prop = _payload(0, struct.pack("!BBBB", 1, 1, 0, len(ts)) + trans)
    sa = _payload(13, struct.pack("!II", 1, 1) + prop)
    vids = (_payload(13, bytes.fromhex("4a131c81070358455c5728f20e95452f"))     # RFC 3947 NAT-T
            + _payload(0, bytes.fromhex("90cb80913ebb696e086381b5ec427b1f")))   # draft-02 NAT-T
    body = sa + vids
    return spi + bytes(8) + struct.pack("!BBBBII", 1, 0x10, 2, 0, 0, 28 + len(body)) + body


def _ikev2(spi):
    def t(last, ttype, tid, attr=b""):
        return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attr), ttype, 0, tid) + attr
    trans = (t(False, 1, 12, struct.pack("!HH", 0x800e, 256)) + t(False, 2, 5) + t(False, 3, 12)
             + t(True, 4, 14))
    prop = struct.pack("!BBHBBBB", 0, 0, 8 + len(trans), 1, 1, 0, 4) + trans
    body = (_payload(34, prop) + _payload(40, struct.pack("!HH", 14, 0) + b"\x7f" + os.urandom(255))
            + _payload(0, os.urandom(32)))
    return spi + bytes(8) + struct.pack("!BBBBII", 33, 0x20, 34, 0x08, 0, 28 + len(body)) + body


def ike(version, host, port=500):
    spi = os.urandom(8)
    msg = _ikev1(spi) if version == "v1" else _ikev2(spi)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    for _ in range(3):
        s.sendto(msg, (host, int(port)))
        try:
            data, _ = s.recvfrom(65535)
            break
        except socket.timeout:
            continue
    else:
        print("ike%s: no answer" % version)
        return False
    ok = len(data) >= 28 and data[:8] == spi and data[16] in (1, 33)   # first payload SA
    print("ike%s: %s" % (version, "proposal chosen" if ok else "no proposal chosen (payload %d)" % data[16]))
    return ok


def echo(host, port):
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"ras-interop-echo\n")
    got = b""
    while len(got) < 17:
        d = s.recv(64)
        if not d:
            break
        got += d
    print("echo : %s" % ("ok" if got == b"ras-interop-echo\n" else "FAIL %r" % got))
    return got == b"ras-interop-echo\n"


PROBES = {"sstp": sstp, "pptp": pptp, "ike": ike, "echo": echo}


def run(argv):
    try:
        return PROBES[argv[0]](*argv[1:])
    except (OSError, TypeError) as e:
        print("%s: %s" % (argv[0], e))
        return False


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "multi":
        results = [run(spec.split()) for spec in sys.argv[2:]]
        sys.exit(0 if all(results) else 1)
    if len(sys.argv) < 2 or sys.argv[1] not in PROBES:
        print(__doc__)
        sys.exit(2)
    sys.exit(0 if run(sys.argv[1:]) else 1)


main()
