"""group_leader.py -- a consumer-group member that speaks the classic group
protocol itself (Python stdlib, plain TCP, a single-broker cluster) so that a
test can hold another member at a moment no real client lets it choose:
between the JoinGroup response of a rebalance and its SyncGroup response.

The member joins first (the broker makes the first member the leader) and
takes every partition. When another member joins, it rejoins as leader and
then *withholds* the SyncGroup the followers wait for, until leave() -- the
followers sit in that state meanwhile (a rebalance that does not finish:
what a broker lost mid-rebalance looks like to them).

    m = GroupLeader("127.0.0.1:9092", "group", "topic", 6)
    m.join()                   # leader of a group of one
    ...start the other member...
    m.wait_withholding(60)     # rejoined with it: it waits for SyncGroup now
    ...
    m.leave()                  # LeaveGroup: the others' SyncGroup fails
"""
import socket
import struct
import threading
import time

JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14
MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS = 79, 27


def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _nullable_str(s):
    return struct.pack(">h", -1) if s is None else _str(s)


def _bytes(b):
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


class _Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)
        self.o += struct.calcsize(fmt)
        return v[0]

    def str(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.d[self.o:self.o + n].decode()
        self.o += n
        return s

    def bytes(self):
        n = self.take(">i")
        if n < 0:
            return None
        b = self.d[self.o:self.o + n]
        self.o += n
        return b


class GroupLeader:
    PROTOCOL = "cooperative-sticky"  # what librdkafka's consumers offer

    def __init__(self, bootstrap, group, topic, partitions, session_ms=30000):
        host, port = bootstrap.rsplit(":", 1)
        self.addr = (host, int(port))
        self.group, self.topic, self.partitions = group, topic, partitions
        self.session_ms = session_ms
        self.member_id = ""
        self.generation = -1
        self._corr = 0
        self._lock = threading.Lock()
        self._withholding = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self.error = None
        self.members = []

    # -- wire

    def _call(self, sock, api, version, body, timeout):
        with self._lock:
            self._corr += 1
            corr = self._corr
        hdr = struct.pack(">hhi", api, version, corr) + _str("kb-test-leader")
        msg = hdr + body
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", self._recv(sock, 4))[0]
        data = self._recv(sock, size)
        r = _Reader(data)
        if r.take(">i") != corr:
            raise RuntimeError("group leader: response out of order")
        return r

    @staticmethod
    def _recv(sock, n):
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                raise RuntimeError("group leader: the broker closed the connection")
            out += chunk
        return out

    def _connect(self):
        return socket.create_connection(self.addr, timeout=10)

    # -- the protocol (JoinGroup v5, SyncGroup v3, Heartbeat v3, LeaveGroup v3)

    def _join(self, sock, timeout):
        meta = struct.pack(">h", 0) + struct.pack(">i", 1) + _str(self.topic) + _bytes(None)
        while True:
            body = (_str(self.group) + struct.pack(">ii", self.session_ms, self.session_ms) +
                    _str(self.member_id) + _nullable_str(None) + _str("consumer") +
                    struct.pack(">i", 1) + _str(self.PROTOCOL) + _bytes(meta))
            r = self._call(sock, JOIN_GROUP, 5, body, timeout)
            r.take(">i")  # throttle
            err = r.take(">h")
            gen = r.take(">i")
            r.str()  # protocol
            leader = r.str()
            self.member_id = r.str()
            if err == MEMBER_ID_REQUIRED:
                continue
            if err:
                raise RuntimeError("group leader: JoinGroup error %d" % err)
            members = []
            for _ in range(r.take(">i")):
                members.append(r.str())
                r.str()
                r.bytes()
            if leader != self.member_id:
                raise RuntimeError("group leader: another member leads the group")
            self.generation, self.members = gen, members
            return

    def _sync_all_to_me(self, sock):
        assignment = (struct.pack(">h", 0) + struct.pack(">i", 1) + _str(self.topic) +
                      struct.pack(">i", self.partitions) +
                      b"".join(struct.pack(">i", p) for p in range(self.partitions)) +
                      _bytes(None))
        body = (_str(self.group) + struct.pack(">i", self.generation) + _str(self.member_id) +
                _nullable_str(None) + struct.pack(">i", 1) + _str(self.member_id) +
                _bytes(assignment))
        r = self._call(sock, SYNC_GROUP, 3, body, 30)
        r.take(">i")
        err = r.take(">h")
        if err:
            raise RuntimeError("group leader: SyncGroup error %d" % err)

    def _heartbeat(self, sock):
        body = (_str(self.group) + struct.pack(">i", self.generation) + _str(self.member_id) +
                _nullable_str(None))
        r = self._call(sock, HEARTBEAT, 3, body, 10)
        r.take(">i")
        return r.take(">h")

    # -- what a test calls

    def join(self):
        """Joins as the group's only member (its leader) and takes every
        partition; then heartbeats in a thread until another member joins,
        rejoins with it as leader and withholds the SyncGroup."""
        self._sock = self._connect()
        self._join(self._sock, 30)
        if self.members != [self.member_id]:
            raise RuntimeError("group leader: the group was not empty: %s" % self.members)
        self._sync_all_to_me(self._sock)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while not self._stop.wait(0.5):
                err = self._heartbeat(self._sock)
                if err == REBALANCE_IN_PROGRESS:
                    # rejoin (blocks until every member has joined), then
                    # send no SyncGroup: the followers wait for it
                    self._join(self._sock, self.session_ms / 1000.0 + 30)
                    self._withholding.set()
                    return
                if err:
                    raise RuntimeError("group leader: Heartbeat error %d" % err)
        except Exception as e:  # reported by wait_withholding()
            self.error = e

    def wait_withholding(self, timeout):
        """Waits until the leader has rejoined with another member and
        withholds their assignment; returns the members of the generation."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._withholding.wait(0.1):
                return list(self.members)
            if self.error:
                raise self.error
        raise TimeoutError("group leader: no other member joined within %ds" % timeout)

    def leave(self):
        """LeaveGroup: a pending SyncGroup of the others fails, and they
        rejoin (or finish leaving) without this member."""
        self._stop.set()
        if self._thread:
            self._thread.join(15)
        try:
            with self._connect() as s:
                body = (_str(self.group) + struct.pack(">i", 1) + _str(self.member_id) +
                        _nullable_str(None))
                self._call(s, LEAVE_GROUP, 3, body, 10)
        finally:
            self._sock.close()
