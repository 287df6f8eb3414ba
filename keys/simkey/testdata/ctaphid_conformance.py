#!/usr/bin/env python3
"""Checks a KeyDesk key's USB HID transport with python-fido2, an independent
CTAPHID host stack (CTAP 2.1, section 11.2).

Usage: ctaphid_conformance.py BRIDGE [ARG...]

BRIDGE is a program that runs a fresh key and moves its 64-byte HID reports
over its standard input (host to key) and standard output (key to host), and
that writes "stdiobridge: winks=N state=S" to standard error when its input
ends. This script starts it twice, once with -linked added (a linked key) and
once with -delay=250ms (a slow key, which sends KEEPALIVE), drives the key
through fido2.hid.CtapHidDevice and prints one line per check:

    ok   NAME[: note]
    FAIL NAME: why
    skip NAME: why

then "summary: P passed, F failed, S skipped". It exits 0 when no check
failed, 1 when one did and 2 when it could not run at all.
"""

import os
import re
import select
import struct
import subprocess
import sys
from threading import Event

try:
    from fido2 import cbor
    from fido2.ctap import STATUS, CtapError
    from fido2.hid import CAPABILITY, CTAPHID, CtapHidDevice
    from fido2.hid.base import CtapHidConnection, HidDescriptor
except ImportError as e:
    print("cannot run: python-fido2 is missing (%s): apt-get install python3-fido2" % e)
    sys.exit(2)

REPORT_SIZE = 64
BROADCAST = 0xFFFFFFFF
MAX_MESSAGE = 57 + 128 * 59  # 7609 bytes in 64-byte reports
TIMEOUT = 5.0  # seconds to wait for a report the key owes
QUIET = 0.15  # seconds without a report that count as "the key sent nothing"
TYPE_INIT = 0x80
VENDOR_INFO = 0x40  # KeyDesk's INFO: a CBOR map, key 4 is the state
UNKNOWN_COMMANDS = (0x02, 0x05, 0x07, 0x09, 0x30)  # not defined by CTAPHID
UNALLOCATED_CID = 0x0BADCAFE
U2F_VERSION_APDU = bytes.fromhex("0003000000")


class Failure(Exception):
    """A check failed."""


class Skip(Exception):
    """A check does not apply."""


class BridgeConnection(CtapHidConnection):
    """A CtapHidConnection to a key behind a bridge process."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, bufsize=0)
        self.fd = self.proc.stdout.fileno()

    def write_packet(self, data):
        if len(data) != REPORT_SIZE:
            raise Failure("host stack wrote a %d-byte report" % len(data))
        self.proc.stdin.write(data)

    def read_packet(self):
        buf = b""
        while len(buf) < REPORT_SIZE:
            if not select.select([self.fd], [], [], TIMEOUT)[0]:
                raise Failure("no report from the key within %.0f s" % TIMEOUT)
            chunk = os.read(self.fd, REPORT_SIZE - len(buf))
            if not chunk:
                raise Failure("the bridge closed its output")
            buf += chunk
        return buf

    def unrequested(self):
        """Reports that arrive without being asked for, until QUIET passes."""
        out = []
        while select.select([self.fd], [], [], QUIET)[0]:
            out.append(self.read_packet())
        return out

    def close(self):
        pass  # CtapHidDevice.close; the bridge ends in finish

    def finish(self):
        """Ends the bridge's input; returns its exit code, the reports it
        still sent and its standard error."""
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            err += b"\n(did not exit within %.0f s of EOF: killed)" % TIMEOUT
        reports = [out[i:i + REPORT_SIZE] for i in range(0, len(out), REPORT_SIZE)]
        return self.proc.returncode, reports, err.decode(errors="replace")


def descriptor():
    """A HidDescriptor of 64-byte reports, for any python-fido2 version."""
    values = dict(path="stdio-bridge", vid=0x1209, pid=0x0001,
                  report_size_in=REPORT_SIZE, report_size_out=REPORT_SIZE,
                  product_name="KeyDesk Sim", serial_number=None)
    return HidDescriptor(**{f: values.get(f) for f in HidDescriptor._fields})


def describe(report):
    """A report in words, e.g. "ERROR code 0x06 (BCNT 1) on 0A1B2C3D"."""
    cid, b, bcnt = struct.unpack_from(">IBH", report)
    if not b & TYPE_INIT:
        return "continuation SEQ %d on %08X" % (b, cid)
    cmd = b & 0x7F
    try:
        name = CTAPHID(cmd).name
    except ValueError:
        name = "0x%02X" % cmd
    extra = " code 0x%02X" % report[7] if cmd == CTAPHID.ERROR else ""
    return "%s%s (BCNT %d) on %08X" % (name, extra, bcnt, cid)


def packet(cid, cmd, data=b""):
    header = struct.pack(">IBH", cid, TYPE_INIT | cmd, len(data))
    return (header + data).ljust(REPORT_SIZE, b"\0")


def expect_error(code, fn, *args, **kwargs):
    try:
        got = fn(*args, **kwargs)
    except CtapError as e:
        if e.code != code:
            raise Failure("ERROR %s, want %s" % (e.code, CtapError.ERR(code)))
        return
    raise Failure("answered %r, want ERROR %s" % (bytes(got or b"")[:16], CtapError.ERR(code)))


def call_on(dev, cid, cmd, data=b""):
    """python-fido2's call, on another channel than the device's own."""
    own, dev._channel_id = dev._channel_id, cid
    try:
        return dev.call(cmd, data)
    finally:
        dev._channel_id = own


def no_reply(conn, what):
    stray = conn.unrequested()
    if stray:
        raise Failure("the key answered %s with %s" % (what, "; ".join(map(describe, stray))))


def key_state(dev):
    info = cbor.decode(dev.call(VENDOR_INFO))
    return info[4]


def read_single(conn, cid, cmd, others):
    """Reads until the one-packet reply to cmd on cid. KEEPALIVE on cid is
    skipped; reports on the channels in others are collected."""
    while True:
        r = conn.read_packet()
        rcid, rcmd, bcnt = struct.unpack_from(">IBH", r)
        if rcid in others:
            others[rcid].append(r)
        elif rcid != cid:
            raise Failure("unexpected %s" % describe(r))
        elif rcmd == TYPE_INIT | CTAPHID.KEEPALIVE:
            continue
        elif rcmd == TYPE_INIT | cmd:
            return r[7:7 + bcnt]
        else:
            raise Failure("unexpected %s" % describe(r))


class Checks:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def run(self, name, fn, *args):
        try:
            note = fn(*args)
        except Skip as e:
            self.skipped += 1
            print("skip %s: %s" % (name, e))
        except Failure as e:
            self.failed += 1
            print("FAIL %s: %s" % (name, e))
        except CtapError as e:
            self.failed += 1
            print("FAIL %s: unexpected ERROR %s" % (name, e.code))
        except Exception as e:  # python-fido2 raises plain Exception for framing faults
            self.failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
        else:
            self.passed += 1
            print("ok   %s%s" % (name, ": " + note if note else ""))
        sys.stdout.flush()


def check_bridge_end(c, conn, prefix, want_winks, want_state):
    """The bridge exits cleanly on EOF, sent nothing unasked, and the key
    winked as often as asked and is in the expected state."""
    code, reports, err = conn.finish()
    summary = re.search(r"stdiobridge: winks=(\d+) state=(\w+)", err)

    def clean_exit():
        if code != 0 or not summary:
            raise Failure("exit code %d, stderr %r" % (code, err.strip()))

    def nothing_unasked():
        if reports:
            raise Failure("the key sent %s" % "; ".join(map(describe, reports)))

    def effects():
        if not summary:
            raise Failure("no summary on the bridge's stderr")
        winks, state = int(summary.group(1)), summary.group(2)
        if winks != want_winks or state != want_state:
            raise Failure("winks=%d state=%s, want winks=%d state=%s" % (winks, state, want_winks, want_state))
        return "winks=%d state=%s" % (winks, state)

    c.run(prefix + "bridge.clean-exit", clean_exit)
    c.run(prefix + "bridge.nothing-unasked", nothing_unasked)
    c.run(prefix + "bridge.key-effects", effects)


def linked_key(c, bridge):
    conn = BridgeConnection(bridge + ["-linked"])
    devs = []

    def allocate():
        devs.append(CtapHidDevice(descriptor(), conn))
        cid = devs[0]._channel_id
        if cid in (0, BROADCAST):
            raise Failure("channel %08X" % cid)
        return "CID %08X" % cid

    c.run("init.allocate", allocate)
    if not devs:
        conn.finish()
        return
    dev = devs[0]
    caps = dev.capabilities
    winks = 0

    def version():
        if dev.version != 2:
            raise Failure("protocol version %d, want 2" % dev.version)
        return "device version %d.%d.%d" % dev.device_version

    def capability_bits():
        names = [f.name for f in CAPABILITY if f.supported(caps)]
        if caps & ~(CAPABILITY.WINK | CAPABILITY.CBOR | CAPABILITY.NMSG):
            raise Failure("capabilities 0x%02X set bits CTAP 2.1 does not define" % caps)
        return "0x%02X %s" % (caps, " ".join(names))

    def fresh_cid():
        cids = {dev._channel_id}
        for _ in range(3):
            cid = CtapHidDevice(descriptor(), conn)._channel_id
            if cid in cids or cid in (0, BROADCAST):
                raise Failure("INIT on the broadcast channel gave %08X again" % cid)
            cids.add(cid)

    def resync():
        nonce = os.urandom(8)
        r = dev.call(CTAPHID.INIT, nonce)
        if len(r) != 17 or r[:8] != nonce:
            raise Failure("reply %s" % r.hex())
        cid, ver = struct.unpack_from(">IB", r, 8)
        if cid != dev._channel_id or ver != 2:
            raise Failure("channel %08X version %d, want %08X version 2" % (cid, ver, dev._channel_id))

    c.run("init.version", version)
    c.run("init.capability-bits", capability_bits)
    c.run("init.fresh-cid", fresh_cid)
    c.run("init.resync", resync)

    def ping(n):
        data = os.urandom(n)
        got = dev.ping(data)
        if got != data:
            raise Failure("echo of %d bytes differs (%d bytes back)" % (n, len(got)))

    for n in (0, 1, 57, 58, 59, 116, 117, 118, 500, MAX_MESSAGE):
        c.run("ping.%d" % n, ping, n)
    c.run("ping.too-long", expect_error, CtapError.ERR.INVALID_LENGTH, dev.ping, os.urandom(MAX_MESSAGE + 1))
    c.run("ping.after-refused", ping, 100)

    for cmd in UNKNOWN_COMMANDS:
        c.run("cmd.unknown.0x%02X" % cmd, expect_error, CtapError.ERR.INVALID_COMMAND, dev.call, cmd)
    c.run("channel.broadcast-refused", expect_error, CtapError.ERR.INVALID_CHANNEL,
          call_on, dev, BROADCAST, CTAPHID.PING, b"x")
    c.run("channel.unallocated-refused", expect_error, CtapError.ERR.INVALID_CHANNEL,
          call_on, dev, UNALLOCATED_CID, CTAPHID.PING, b"x")

    def vendor_info():
        state = key_state(dev)
        if state != "linked":
            raise Failure("state %r, want 'linked'" % state)
        return "state %s" % state

    c.run("vendor.info", vendor_info)

    def wink():
        nonlocal winks
        if not CAPABILITY.WINK.supported(caps):
            raise Skip("CAPABILITY_WINK not set")
        for _ in range(2):
            got = dev.call(CTAPHID.WINK)
            if got != b"":
                raise Failure("WINK reply of %d bytes, want none" % len(got))
            winks += 1

    def cbor_cmd():
        getinfo = b"\x04"  # authenticatorGetInfo
        if not CAPABILITY.CBOR.supported(caps):
            expect_error(CtapError.ERR.INVALID_COMMAND, dev.call, CTAPHID.CBOR, getinfo)
            return "CAPABILITY_CBOR not set: CTAPHID_CBOR answered ERR_INVALID_CMD"
        r = dev.call(CTAPHID.CBOR, getinfo)
        if not r or r[0] != 0:
            raise Failure("CAPABILITY_CBOR set, but authenticatorGetInfo gave status %r" % r[:1])
        if not isinstance(cbor.decode(r[1:]), dict):
            raise Failure("authenticatorGetInfo is not a CBOR map")
        return "authenticatorGetInfo answered"

    def msg():
        if CAPABILITY.NMSG.supported(caps):
            expect_error(CtapError.ERR.INVALID_COMMAND, dev.call, CTAPHID.MSG, U2F_VERSION_APDU)
            return "CAPABILITY_NMSG set: CTAPHID_MSG answered ERR_INVALID_CMD"
        r = dev.call(CTAPHID.MSG, U2F_VERSION_APDU)
        if r[-2:] != b"\x90\x00":
            raise Failure("CAPABILITY_NMSG clear, but U2F_VERSION gave %s" % r.hex())
        return "U2F_VERSION answered"

    c.run("wink", wink)
    c.run("cbor", cbor_cmd)
    c.run("msg", msg)

    def lock():
        # CTAPHID_LOCK is optional: a key either locks the channel for the
        # given seconds or does not know the command.
        other = CtapHidDevice(descriptor(), conn)
        try:
            dev.lock(2)
        except CtapError as e:
            if e.code == CtapError.ERR.INVALID_COMMAND:
                return "not implemented (optional): ERR_INVALID_CMD"
            raise
        expect_error(CtapError.ERR.CHANNEL_BUSY, other.ping, b"locked out")
        dev.lock(0)
        if other.ping(b"released") != b"released":
            raise Failure("no echo after the lock was released")
        return "channel lock held and released"

    def lock_leaves_key():
        state = key_state(dev)
        if state != "linked":
            raise Failure("after CTAPHID_LOCK the key's state is %r, want 'linked'" % state)

    c.run("lock", lock)
    c.run("lock.key-state", lock_leaves_key)

    def cancel(cid):
        conn.write_packet(packet(cid, CTAPHID.CANCEL))
        no_reply(conn, "CANCEL on %08X" % cid)
        if dev.ping(b"after cancel") != b"after cancel":
            raise Failure("no echo after CANCEL")

    c.run("cancel.idle", cancel, dev._channel_id)
    c.run("cancel.unallocated", cancel, UNALLOCATED_CID)
    c.run("cancel.broadcast", cancel, BROADCAST)

    check_bridge_end(c, conn, "", winks, "linked")


def slow_key(c, bridge):
    conn = BridgeConnection(bridge + ["-delay=250ms"])
    devs = []

    def allocate():
        devs.extend(CtapHidDevice(descriptor(), conn) for _ in range(2))

    c.run("slow.init.allocate", allocate)
    if len(devs) < 2:
        conn.finish()
        return
    dev, other = devs

    def keepalive():
        seen = []
        got = dev.call(CTAPHID.PING, b"slow", on_keepalive=seen.append)
        if got != b"slow":
            raise Failure("echo %r" % got)
        if STATUS.PROCESSING not in seen:
            raise Failure("no KEEPALIVE PROCESSING seen (saw %r)" % seen)

    def cancel_own():
        # python-fido2 sends CANCEL before each report it reads while the
        # event is set. The key must never answer CANCEL itself; the
        # request either completes or fails with KEEPALIVE_CANCEL.
        ev = Event()
        ev.set()
        try:
            got = dev.call(CTAPHID.PING, b"cancel me", event=ev)
        except CtapError as e:
            if e.code != CtapError.ERR.KEEPALIVE_CANCEL:
                raise Failure("the key answered CANCEL with ERROR %s" % e.code)
            note = "request cancelled (KEEPALIVE_CANCEL)"
        else:
            if got != b"cancel me":
                raise Failure("echo %r" % got)
            note = "request not cancellable: completed"
        no_reply(conn, "CANCEL")
        return note

    def busy():
        conn.write_packet(packet(dev._channel_id, CTAPHID.PING, b"first"))
        conn.write_packet(packet(other._channel_id, CTAPHID.PING, b"second"))
        seen = {other._channel_id: []}
        if read_single(conn, dev._channel_id, CTAPHID.PING, seen) != b"first":
            raise Failure("wrong echo on the busy channel")
        got = [describe(r) for r in seen[other._channel_id]]
        want = "ERROR code 0x%02X (BCNT 1) on %08X" % (CtapError.ERR.CHANNEL_BUSY, other._channel_id)
        if got != [want]:
            raise Failure("other channel got %s, want %s" % (got, want))

    def cancel_other():
        conn.write_packet(packet(dev._channel_id, CTAPHID.PING, b"first"))
        conn.write_packet(packet(other._channel_id, CTAPHID.CANCEL))
        seen = {other._channel_id: []}
        if read_single(conn, dev._channel_id, CTAPHID.PING, seen) != b"first":
            raise Failure("wrong echo")
        if seen[other._channel_id]:
            raise Failure("the key answered CANCEL on the other channel with %s" %
                          "; ".join(map(describe, seen[other._channel_id])))
        no_reply(conn, "CANCEL")

    c.run("slow.keepalive", keepalive)
    c.run("slow.cancel-own-request", cancel_own)
    c.run("slow.busy-other-channel", busy)
    c.run("slow.cancel-other-channel", cancel_other)
    check_bridge_end(c, conn, "slow.", 0, "blank")


def main(argv):
    if len(argv) < 2:
        print("usage: %s BRIDGE [ARG...]" % argv[0])
        return 2
    bridge = argv[1:]
    c = Checks()
    try:
        linked_key(c, bridge)
        slow_key(c, bridge)
    except OSError as e:
        print("cannot run: starting the bridge %s: %s" % (bridge, e))
        return 2
    print("summary: %d passed, %d failed, %d skipped" % (c.passed, c.failed, c.skipped))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
