#!/usr/bin/env python3
"""read_store.py - read the object graph of a persist store from Python (stdlib only).

    python3 docs/examples/read_store.py site.persist [PATH]

Prints the root dict (or the value at a dotted PATH such as people.joe) as JSON,
decoding the value slots of FORMAT.md "Objects" directly from the mapped file. It
follows FORMAT.md "Interop: locking protocol" (Linux, glibc x86-64):

  * open lock: an OFD lock on byte 0. If an exclusive one is granted, nobody else has
    the store open, and while we hold it nobody can finish opening it (openers wait
    for a shared lock), so we read without the mutex. Otherwise we take a shared one.
  * store lock: with other openers around, lk_mutex (header offset 272) is locked with
    glibc's pthread_mutex_timedlock through ctypes for the whole read; EOWNERDEAD or
    a non-empty journal means a writer died mid-transaction: roll the journal back,
    then pthread_mutex_consistent.

Values JSON cannot hold are printed like `persist dump` does ({"$persist": ...}); this
example decodes the common ones (numbers, strings, booleans, null, undefined, dates,
dicts, lists, class objects) and prints {"$persist": "unsupported", "tag": N} for
the rest. A record met twice prints as {"$persist": "ref", "path": "$..."} - the
first place it was printed - so shared records and cycles come out exactly as in
`persist dump`.
Exit status: 0 ok, 1 not a store / damaged, 2 usage or lock error.
"""
import ctypes
import errno
import fcntl
import json
import mmap
import os
import re
import struct
import sys
import time

PAGE = 4096
MAGIC = b"\x89PERSIST"
F_OFD_SETLK, F_OFD_SETLKW = 37, 38  # linux/fcntl.h
HD_PAGE_COUNT, HD_TXID, HD_JR_FIRST, HD_JR_ENTRIES, HD_SLOTS = 24, 32, 56, 64, 128
LK_OWNER_PID, LK_MUTEX, LK_WAL_FLAGS = 264, 272, 348
JR_CHUNK_BYTES = 16 * PAGE
JOURNAL_MAGIC = 0x4B4E4843524E524A
JOURNAL_END = 0xFFFFFFFFFFFFFFFF  # je_off of the END marker
HEAP_MAGIC = 0x5041454854535250  # "PRSTHEAP"
KINDS = {1: "dict", 2: "list", 3: "object"}
CHECK_SALT = 0x5E11AB1E
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]*|\$[A-Za-z0-9_$-]+")


class Damaged(Exception):
    pass


def flock(fd, cmd, ltype):
    # struct flock on x86-64: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid (+pad)
    fcntl.fcntl(fd, cmd, struct.pack("hhqqi4x", ltype, os.SEEK_SET, 0, 1, 0))


class Store:
    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR)
        size = os.fstat(self.fd).st_size
        head = os.pread(self.fd, 392, 0)
        if len(head) < 392 or head[:8] != MAGIC:
            raise Damaged("not a persist store (bad magic)")
        fmt, endian, page_size = struct.unpack_from("<III", head, 8)
        if endian != 0x0A0B0C0D or page_size != PAGE or not 1 <= fmt <= 1:
            raise Damaged(f"unsupported store (format {fmt}, page size {page_size})")
        try:
            flock(self.fd, F_OFD_SETLK, fcntl.F_WRLCK)
            self.exclusive = True
        except OSError:
            flock(self.fd, F_OFD_SETLKW, fcntl.F_RDLCK)
            self.exclusive = False
        if self.exclusive and os.path.exists(path + "-wal"):
            # durability 'full': this example does not replay the redo log
            raise OSError(errno.EAGAIN, "has a -wal redo log this example cannot replay; open the store once with persist first")
        pages = struct.unpack_from("<Q", head, HD_PAGE_COUNT)[0]
        if pages * PAGE > size:
            raise Damaged("truncated store")
        self.map(pages * PAGE)
        self.mutex = None

    def map(self, nbytes):
        self.mm = mmap.mmap(self.fd, nbytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.size = nbytes

    def u8(self, off):
        self.need(off, 1)
        return self.mm[off]

    def u32(self, off):
        self.need(off, 4)
        return struct.unpack_from("<I", self.mm, off)[0]

    def u64(self, off):
        self.need(off, 8)
        return struct.unpack_from("<Q", self.mm, off)[0]

    def need(self, off, n):
        if off < 0 or off + n > self.size:
            raise Damaged(f"offset {off} (+{n}) is outside the store ({self.size} bytes)")

    # ---- locking (FORMAT.md "Interop: locking protocol") ----------------------
    def lock(self):
        if self.exclusive:
            if self.u64(HD_JR_ENTRIES) != 0:
                self.rollback()  # only opener: recover like the pager does at open
            return
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        cbuf = (ctypes.c_char * self.size).from_buffer(self.mm)
        self.mutex = ctypes.addressof(cbuf) + LK_MUTEX
        self.libc, self.cbuf = libc, cbuf

        class Timespec(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

        deadline = Timespec(int(time.time()) + 10, 0)
        e = libc.pthread_mutex_timedlock(ctypes.c_void_p(self.mutex), ctypes.byref(deadline))
        if e == errno.ETIMEDOUT:
            raise OSError(e, "timed out waiting for the store lock")
        if e not in (0, errno.EOWNERDEAD):
            raise OSError(e, os.strerror(e))
        pages = self.u64(HD_PAGE_COUNT)
        if pages * PAGE > self.size:  # another process grew the store: map the rest too
            del self.cbuf
            self.mm.close()
            self.map(pages * PAGE)
            self.cbuf = (ctypes.c_char * self.size).from_buffer(self.mm)
            self.mutex = ctypes.addressof(self.cbuf) + LK_MUTEX
        if self.u32(LK_WAL_FLAGS) & 1:  # a 'full' commit is in the log but not yet in the store
            if e == errno.EOWNERDEAD:
                libc.pthread_mutex_consistent(ctypes.c_void_p(self.mutex))
            libc.pthread_mutex_unlock(ctypes.c_void_p(self.mutex))
            self.mutex = None
            raise OSError(errno.EAGAIN, "the redo log must be replayed first; open the store once with persist")
        if e == errno.EOWNERDEAD or self.u64(HD_JR_ENTRIES) != 0:
            self.rollback()
            if e == errno.EOWNERDEAD:
                libc.pthread_mutex_consistent(ctypes.c_void_p(self.mutex))
        struct.pack_into("<Q", self.mm, LK_OWNER_PID, os.getpid())

    def unlock(self):
        if self.mutex is not None:
            struct.pack_into("<Q", self.mm, LK_OWNER_PID, 0)
            self.libc.pthread_mutex_unlock(ctypes.c_void_p(self.mutex))

    def is_end(self, e):
        """The END marker after a transaction's last journal entry (je_len 0, je_off all ones)."""
        return self.u32(e + 8) == 0 and self.u64(e) == JOURNAL_END

    def rollback(self):
        """Undo the first hd_jr_entries journal entries, newest first (FORMAT.md "Pager: journal")."""
        n = self.u64(HD_JR_ENTRIES)
        chunk, off, hops, pos = self.u64(HD_JR_FIRST), 32, 0, []
        for i in range(1, n + 1):
            e = chunk * PAGE + off
            if off + 16 <= JR_CHUNK_BYTES and self.is_end(e):
                break  # END marker: hd_jr_entries was damaged (too high)
            if off + 16 > JR_CHUNK_BYTES or self.u32(e + 8) == 0:
                chunk, off, hops = self.u64(chunk * PAGE + 8), 32, hops + 1
                if hops > self.size // JR_CHUNK_BYTES + 1 or self.u64(chunk * PAGE) != JOURNAL_MAGIC:
                    raise Damaged("the journal chain is damaged")
                e = chunk * PAGE + off
                if self.is_end(e):
                    break
            je_off, je_len, je_seq = self.u64(e), self.u32(e + 8), self.u32(e + 12)
            if je_seq != i or je_len == 0 or off + 16 + je_len > JR_CHUNK_BYTES or je_off + je_len > self.size:
                raise Damaged(f"journal entry {i} is damaged")
            pos.append((e, je_off, je_len))
            off += 16 + ((je_len + 7) & ~7)
        for i in range(len(pos), 0, -1):
            e, je_off, je_len = pos[i - 1]
            for k in range(je_len):
                if not HD_JR_ENTRIES <= je_off + k < HD_JR_ENTRIES + 8:  # never restore hd_jr_entries
                    self.mm[je_off + k] = self.mm[e + 16 + k]
            struct.pack_into("<Q", self.mm, HD_JR_ENTRIES, i - 1)

    # ---- the object graph (FORMAT.md "Objects") ----------------------------------
    def root(self):
        heap = self.u64(HD_SLOTS) * PAGE
        if self.u64(heap) != HEAP_MAGIC:
            raise Damaged("no heap meta page")
        meta = self.u64(heap + 16)  # hp_roots[0]
        if bytes(self.mm[meta : meta + 8]) != b"PRSTOBJS" or self.u32(meta + 8) != 1:
            raise Damaged("no objects meta block (or a newer layout)")
        return self.u64(meta + 16)  # om_root

    def string(self, slot):
        tag = self.u8(slot)
        if tag == 8:  # SSTR: Latin-1 inline
            n = self.u8(slot + 1)
            return bytes(self.mm[slot + 2 : slot + 2 + n]).decode("latin-1")
        if tag == 9:  # SSTR16: UTF-16LE inline
            n = self.u8(slot + 1) * 2
            return bytes(self.mm[slot + 2 : slot + 2 + n]).decode("utf-16-le", "surrogatepass")
        enc, n, block = self.u8(slot + 1), self.u32(slot + 4), self.u64(slot + 8)  # STR
        self.need(block, n)
        raw = bytes(self.mm[block : block + n])
        return raw.decode("latin-1") if enc == 0 else raw.decode("utf-16-le", "surrogatepass")

    def record(self, off, kind):
        self.need(off, 16)
        gen, check = self.u32(off + 4), self.u32(off + 12)
        if KINDS.get(self.u8(off)) != kind or check != (gen ^ (off // 16) ^ CHECK_SALT) & 0xFFFFFFFF:
            raise Damaged(f"record {off:#x} is not a live {kind}")

    def entries(self, d):
        """(key, value slot) of dict record d, in insertion order."""
        used, block = self.u32(d + 20), self.u64(d + 32)
        for i in range(used):
            e = block + 32 * i
            if self.u8(e) != 255:  # DELETED
                yield self.string(e), e + 16

    def value(self, slot, path, seen):
        tag = self.u8(slot)
        if tag == 0:
            return {"$persist": "undefined"}
        if tag == 1:
            return None
        if tag in (2, 3):
            return tag == 3
        if tag == 4:
            return struct.unpack_from("<q", self.mm, slot + 8)[0]
        if tag in (5, 7):
            f = struct.unpack_from("<d", self.mm, slot + 8)[0]
            if tag == 7:
                if f != f:
                    return {"$persist": "date", "value": None}
                t = time.gmtime(f // 1000)
                return {"$persist": "date", "value": time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % (f % 1000)}
            if f != f or f in (float("inf"), float("-inf")) or (f == 0 and str(f).startswith("-")):
                return {"$persist": "number", "value": {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(str(f), "-0")}
            return int(f) if f.is_integer() and abs(f) < 2**53 else f
        if tag == 6:
            return {"$persist": "bigint", "value": str(struct.unpack_from("<q", self.mm, slot + 8)[0])}
        if tag in (8, 9, 10):
            return self.string(slot)
        if tag == 13:
            kind, off = KINDS.get(self.u8(slot + 1)), self.u64(slot + 8)
            return self.graph(off, kind, path, seen)
        return {"$persist": "unsupported", "tag": tag}

    def graph(self, off, kind, path, seen):
        if off in seen:
            return {"$persist": "ref", "path": seen[off]}
        self.record(off, kind)
        if self.u32(off + 8) > 1:  # rc_refs: shared (or part of a cycle)
            seen[off] = path
        if kind == "list":
            n, items = self.u32(off + 16), self.u64(off + 24)
            return [self.value(items + 16 * i, f"{path}[{i}]", seen) for i in range(n)]
        out = {}
        for k, slot in self.entries(off):
            # the same path syntax as `persist dump` (packages/cli/src/path.ts)
            sub = f"{path}.{k}" if IDENT.fullmatch(k) else f"{path}[{json.dumps(k)}]"
            out[k] = self.value(slot, sub, seen)
        if kind == "object":
            return {"$persist": "object", "class": self.string(off + 48), "value": out}
        if "$persist" in out:
            return {"$persist": "dict", "value": out}
        return out

    def lookup(self, dotted):
        """The value at a dotted PATH (dict keys only, for brevity)."""
        off, kind = self.root(), "dict"
        for key in dotted.split(".") if dotted else []:
            slot = dict(self.entries(off)).get(key)
            if slot is None or self.u8(slot) != 13:
                raise KeyError(key)
            kind, off = KINDS.get(self.u8(slot + 1)), self.u64(slot + 8)
        return off, kind


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: read_store.py FILE [PATH]", file=sys.stderr)
        return 2
    try:
        s = Store(sys.argv[1])
    except Damaged as e:
        print(f"read_store.py: {sys.argv[1]}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"read_store.py: {sys.argv[1]}: {e}", file=sys.stderr)
        return 2
    try:
        s.lock()
        try:
            off, kind = s.lookup(sys.argv[2] if len(sys.argv) == 3 else "")
            value = s.graph(off, kind, "$", {})
            txid = s.u64(HD_TXID)
        finally:
            s.unlock()
    except Damaged as e:
        print(f"read_store.py: {sys.argv[1]}: {e}", file=sys.stderr)
        return 1
    except (OSError, KeyError) as e:
        print(f"read_store.py: {sys.argv[1]}: {e}", file=sys.stderr)
        return 2
    json.dump(value, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    print(f"txid {txid}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
