// pager.cc — the page manager of @persist/pager (see pager.h for the API manual and
// include/persist_format.h / FORMAT.md for the bytes).
//
// Invariants (cited in the code as I1, I2, ...)
// ---------------------------------------------------------------------------
//  I1  The base address never moves: one PROT_NONE reservation of max_size bytes is
//      made at open; the file is mapped MAP_SHARED|MAP_FIXED at its start and, when
//      it grows, the extension is mapped right after (same flags, same base). mapped_ >= hd_page_count*4096
//      after every begin() and every growth; mapped_ <= file size always.
//  I2  The file is never truncated, so a mapping never exceeds the file (no SIGBUS).
//  I3  Every byte the pager changes inside a transaction is journaled (undo image in
//      the file) before it is changed, except: bytes of fresh pages (allocated since
//      the latest savepoint), bits of pages >= hd_page_count (don't care), the lock
//      area and hd_jr_entries (never restored).
//  I4  Journal entry append order: entry header + data first, then a release store of
//      hd_jr_entries += 1. A reader of the journal (rollback, recovery) trusts only the
//      first hd_jr_entries entries.
//  I5  Rollback applies entries newest first and after applying entry i stores
//      hd_jr_entries = i - 1. So a crash during rollback leaves a shorter, still
//      valid journal: recovery is idempotent. An entry never restores hd_jr_entries.
//  I6  Entries are packed from byte 32 of a chunk; an entry never crosses a chunk.
//      A zero je_len (terminator) or fewer than 16 bytes left means "continue at
//      jc_next". The last PST_JR_RESERVE bytes of a chunk are used only by the
//      journal's own allocation of the next chunk.
//  I7  Page frees are deferred to commit, so fresh pages were never live at
//      transaction (or savepoint) start and need no undo image.
//  I8  The commit point is one release store hd_jr_entries = 0. Everything written
//      before it (including hd_txid += 1) is undone by recovery if the process dies
//      before it; nothing after it needs undoing.
//  I9  Pages of the pager itself (page 0, map chunks, journal chunks) are allocated
//      runs that free_pages() and will_write() refuse.
//  I10 Every page number and offset read from the file is range-checked before it is
//      dereferenced (no file content may cause SIGSEGV/SIGBUS).
//  I11 The line set and the fresh set only ever suppress journaling of bytes whose
//      undo image is already in the journal after the latest savepoint, or that are
//      fresh; clearing them is always safe (re-journaling is harmless, I5).
//  I12 Journaling can allocate a journal chunk (free pages). Code that journals the
//      map bits of free pages it is about to allocate re-checks them afterwards, and
//      growth journals the header before reading hd_page_count.
//  I13 The slot after the last entry holds an END marker (je_len 0, je_off
//      PST_JOURNAL_END), written before hd_jr_entries counts that entry (I4): in the
//      same chunk, or at the start of jc_next when the chunk is full (if the chain
//      goes on). Entries of older transactions stay behind it in the chunks, and their
//      je_seq runs 1, 2, ... like the current one's, so a count damaged upwards (a bit
//      flip of hd_jr_entries) would otherwise replay stale undo images over committed
//      data. A reader that meets END before the count stops there: the entries before
//      it are exactly the transaction's (the count can only be too high by damage).
//      Whenever the count returns to 0 ('process' mode: commit, abort, recovery) the
//      first slot gets END, so a count damaged from 0 reads nothing either.
//  I14 The write cache (Pager::WriteCache, pager.h; will_write's inline fast path)
//      holds only pages that a successful will_write found inside the store, not the
//      pager's own and allocated, with lines that are in the line set or fresh. Every
//      LineSet::clear() empties it (new epoch), and so do commit() (before its frees
//      can release a cached page) and close. Allocated pages stay allocated and never
//      become journal chunks until commit (I7), so an entry proves that will_write's
//      checks (open, writable transaction, in range, not the pager's) would pass and
//      that it would journal nothing.
//  I15 find_free() may start above hd_free_hint at ff_from[n] (n <= 64 pages): first fit
//      from there returned p, so no free region of >= n pages starts below p; while no
//      page is freed and the store does not grow, allocations only shrink regions, so
//      that stays true. The hints live in memory and are dropped whenever that could
//      change: a page freed (apply_mark), a rollback (restored map bytes), growth, a new
//      write epoch (WriteCache::serial: commit, abort, savepoint, rollback_to, close)
//      or a commit by anyone (hd_txid). Results are those of a scan from hd_free_hint.
//
// Durability 'full' (F1-F10; the 'process' mode above is unchanged by them)
// ---------------------------------------------------------------------------
//  F1  The store is mapped MAP_PRIVATE (same reservation and base, I1): writes of a
//      transaction are copy-on-write pages of this process and never reach the file
//      before its commit point. Growth maps only the new range, so the open
//      transaction's private pages survive it.
//  F2  The lock area is used only through `lockview`, page 0 mapped a second time
//      MAP_SHARED (lk() picks it). Bytes [256, 4096) of page 0 are never logged or
//      written with pwrite.
//  F3  Redo set = every range the undo journal saved in the whole transaction (its
//      pre-existing bytes; savepoints do not shrink it), every fresh run, and the map
//      bytes growth changed without journaling (I3). Commit appends ONE record with the
//      final bytes of that set to "<path>-wal", fdatasync(log) = the commit point, then
//      pwrite()s the ranges into the store (page cache). hd_jr_entries is 0 in every
//      logged header image: the store's undo journal on disk is always empty.
//  F4  Outside a transaction a 'full' handle's page 0 is never private: commit and
//      abort MADV_DONTNEED it (lock-free txid polling reads the page cache). Abort drops
//      every page the transaction may have written (redo ranges, journal chunks); a
//      commit keeps them (F21) while it may.
//  F5  Recovery (first opener under the exclusive OFD lock; begin() after EOWNERDEAD or
//      with lk_wal_flags set) = fdatasync(log), replay every valid record of the current
//      epoch in order (stop at the first bad one), fdatasync(store), new epoch. Records
//      hold final bytes, so replaying again after a cut is idempotent.
//  F6  A record carries hd_page_count; replay first extends the file to it (the
//      fallocate of a growth may not have been durable).
//  F7  Every 'full'-mode write, sync and allocation of the store or log goes through
//      io_pwrite / io_fsync / io_fallocate (trace + fault injection for tests).
//  F8  A new log is preallocated, synced, and its directory synced before use.
//  F9  A failed sync or write is never retried: before the commit point the
//      transaction is discarded (NOSPC/IO), after it PST_WAL_RECOVER is set (the next
//      begin() replays); either way an I/O failure poisons the handle (no more writes).
//      With group commit a failed log sync leaves published records in doubt (F13).
//  F10 lk_mode is set by the first writer: the first opener if it opens for writing,
//      else (a read-only first opener leaves it 0) the first writer to arrive, which
//      claims it under lk_mutex (claim_mode; a 'full' claimant starts the log's epoch
//      there). An opener asking for the other mode fails.
//
// Group commit (F11-F16; F17 lock format, F18 journal trim; replaces "fdatasync under the lock" of F3/F5 — F3's record
// content, F4, F6-F9 unchanged). Shared state: lk_wal_end / wl_written (written end),
// wl_synced (durable end), wl_applied (in the store), as LSNs = wl_base + offset.
//  F11 One parser: wal_read_record validates a whole record (magic, epoch, increasing
//      txid, length, CRC, every range, I10) before any byte of it is used; recovery and
//      apply (pwrite sink) and the overlay (memcpy sink) all read the log through it.
//      One exception: a committer applies its own record from the buffer it wrote to
//      the log (own_rec: the same bytes, built and CRC'd by itself), not read back.
//  F12 A commit, under lk_mutex, pwrites its record at lk_wal_end and publishes it
//      (lk_wal_end, wl_written, lk_wal_flags bit 0), drops its private pages and
//      unlocks; then waits for the log to be durable past its record (F13) — the
//      commit point — then, under lk_mutex again, applies every synced record not yet
//      applied (wl_applied) to the store with pwrite, in log order. The store file
//      receives a record's bytes only once wl_synced covers it, so no store page can
//      reach the disk before its record is durable. Applying is idempotent (final
//      bytes), so a holder dying mid-apply leaves records to apply again.
//  F13 wl_synced only grows and only after a successful fdatasync(log) by the sync
//      leader (holder of wl_sync_mutex), to the wl_written it read before syncing, or
//      at a new epoch (F15). A failed sync increments wl_fails and sets
//      PST_WAL_RECOVER; a committer reports success only if it reads wl_synced past its
//      record and then wl_fails unchanged since its begin(); a commit is not published
//      if wl_fails changed since its begin(). Lock order: lk_mutex before wl_sync_mutex
//      (the leader never takes lk_mutex).
//  F14 At begin() (under lk_mutex) a writer applies the synced records the store lacks
//      and copies the records [wl_applied, lk_wal_end) into its private view (memcpy,
//      pages remembered in `overlay`, dropped at commit/abort) before the transaction
//      reads anything: every transaction sees every earlier published commit, and its
//      own record follows theirs in the log (durable only together). A transaction
//      that wrote nothing but saw records not yet durable waits for their sync at
//      commit().
//  F15 A new epoch (checkpoint, replay) happens only under lk_mutex with every record
//      of the old epoch durable (checkpoint: ensure_synced; replay: wal_recover syncs
//      the log first) and in the store (checkpoint: applied + fdatasync(store)).
//      wl_base grows by the old end, so LSNs never repeat.
//  F16 A read-only opener of a store with a log maps it MAP_PRIVATE (a private
//      writable mapping of a read-only fd) and overlays records, never writing the
//      store or the log: with the lock, [wl_applied, lk_wal_end) at each begin(); a
//      read-only file (no lock) every valid record of the current epoch. The overlay
//      is dropped at commit/abort: outside a transaction every handle sees the page
//      cache (F4), so lock-free txid polling sees applied commits.
//  F17 lk_format: the first opener (exclusive OFD lock) re-initialises the lock area
//      (lk_mutex, the group-commit area at PST_WAL_LOCK_OFFSET); any other opener
//      refuses a lock area of another format (PERSIST_VERSION).
//  F18 'full' mode trims the journal chain to 4 chunks inside the committing
//      transaction (its record carries the unlink and the frees), like 'process' mode.
//  F19 Waiting for a sync never blocks on wl_sync_mutex: a committer that finds it held
//      sets PST_SYNC_WAITERS in wl_sync_seq and sleeps on it (the leader bumps it after
//      every sync and FUTEX_WAKEs all if the bit was set; bounded 2 ms, then trylock
//      again: EOWNERDEAD finds a dead leader). The
//      leader may gather (wait <= PERSIST_GATHER_US for as many records as the previous
//      sync covered, sleeping on wl_records, which publishers bump and wake) but never
//      while holding lk_mutex (checkpoint), which publishing needs. wl_records,
//      wl_gather, wl_group, wl_group_start are hints: wrong values cost one bounded wait.
//  F20 The last closer of a 'full' store checkpoints (checkpoint_if_last): the next first
//      opener then finds no record of the current epoch to replay.
//  F21 A committer keeps its private copies of the pages its record covers (and of its
//      journal chunks and overlay) after publishing: they hold the bytes the store has
//      once its record and every earlier one are applied. begin(), under lk_mutex and
//      before anything reads the view, drops them all unless wl_written still equals
//      the LSN right after its record (nobody published since; a replay or checkpoint
//      moves wl_written too) and no recovery is due. Abort and a failed commit (also
//      after publication: sync or store write failed) drop them; at most 1,024 pages
//      are kept (beyond, all are dropped as before). Outside a transaction a kept
//      page shows this handle's last commit, not a later one of another process:
//      reads belong in a transaction.
#include "pager.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <map>

namespace persist {

const char* error_code_name(Code c) {
  switch (c) {
    case Code::CORRUPT: return "PERSIST_CORRUPT";
    case Code::NOT_STORE: return "PERSIST_NOT_STORE";
    case Code::VERSION: return "PERSIST_VERSION";
    case Code::LOCKED: return "PERSIST_LOCKED";
    case Code::NOSPC: return "PERSIST_NOSPC";
    case Code::CLOSED: return "PERSIST_CLOSED";
    case Code::IO: return "PERSIST_IO";
    case Code::PERM: return "PERSIST_PERM";
    case Code::NOT_FOUND: return "PERSIST_NOT_FOUND";
    case Code::TXN: return "PERSIST_TXN";
    case Code::INVALID: return "PERSIST_INVALID";
    case Code::READONLY: return "PERSIST_READONLY";
    case Code::UNSUPPORTED: return "PERSIST_UNSUPPORTED";
    case Code::TOO_BIG: return "PERSIST_TOO_BIG";
  }
  return "PERSIST_UNKNOWN";
}

namespace testing {
void (*rollback_hook)(uint64_t remaining) = nullptr;
}

namespace {

constexpr uint64_t kPage = PST_PAGE_SIZE;
constexpr uint64_t kLine = 64;                                    // journal granularity, bytes
constexpr uint64_t kChunkBytes = PST_JOURNAL_CHUNK_PAGES * kPage;  // 65536
constexpr uint64_t kChunkHdr = sizeof(pst_journal_chunk);          // 32
constexpr uint64_t kEntryHdr = sizeof(pst_journal_entry);          // 16
// Bytes at the end of every chunk kept for journaling the allocation of the next
// chunk (I6): header image 272 + map lines <= 2*(16+128) + jc_next 24 + terminator 16.
constexpr uint64_t kJrReserve = 1024;
constexpr uint64_t kHdrJournalBytes = 256;  // header bytes [0,256) journaled as one image
constexpr uint64_t kJrEntriesOff = offsetof(pst_header, hd_jr_entries);
constexpr uint64_t kMapHalf = PST_MAP_CHUNK_PAGES * kPage / 2;  // bytes per bitmap (32768)
constexpr uint64_t kNone = UINT64_MAX;

static_assert(kChunkBytes - kChunkHdr - kJrReserve > 4096, "a chunk holds a page image");
static_assert(sizeof(pthread_mutex_t) <= sizeof(((pst_lock*)nullptr)->lk_mutex), "mutex fits lk_mutex");
static_assert(sizeof(pthread_mutex_t) <= sizeof(((pst_wal_lock*)nullptr)->wl_sync_mutex), "mutex fits wl_sync_mutex");
static_assert(kJrEntriesOff == 64, "hd_jr_entries");
static_assert(offsetof(pst_header, hd_lock) >= kHdrJournalBytes, "lock area is outside the journaled header");

inline uint64_t pad8(uint64_t n) { return (n + 7) & ~uint64_t(7); }

std::string errno_text(int e) { return std::string(strerror(e)); }

uint64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// The set of journaled 64-byte line numbers of the current transaction (I11): an
// open-addressing hash table keyed by page (line / 64) holding a 64-bit mask of the
// page's lines, with O(1) clear (generation stamps in the key). Keying by page keeps
// the lines of one page (a slab header and its blocks, a record and its neighbours)
// in one slot, so a transaction touches fewer cache lines of the set.
class LineSet {
 public:
  LineSet() { slots_.resize(512); }
  void attach(Pager::WriteCache* wc) { wc_ = wc; }  // emptied by every clear() (I14)
  // Adds line k; true if it was not there yet (one probe sequence for both).
  bool insert(uint64_t k) {
    uint64_t page = k >> 6, bit = uint64_t(1) << (k & 63);
    uint64_t key = (gen_ << kPageBits) | page;  // a store has < 2^34 pages
    size_t mask = slots_.size() - 1;
    for (size_t i = hash(page) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.key == key) {
        if (s.lines & bit) return false;
        s.lines |= bit;
        return true;
      }
      if ((s.key >> kPageBits) != gen_) {  // a free slot (an older generation)
        if ((count_ + 1) * 2 > slots_.size()) {
          grow();
          return insert(k);
        }
        s.key = key;
        s.lines = bit;
        ++count_;
        return true;
      }
    }
  }
  void clear() {
    if (wc_) wc_->invalidate();  // I14
    if (count_ == 0) return;
    count_ = 0;
    if (slots_.size() > (1u << 16)) {  // a big transaction: give the memory back
      slots_.assign(512, Slot{});
      gen_ = 1;
      return;
    }
    if (++gen_ == kGenLimit) {  // wrapped: reset stamps so stale slots cannot match
      for (Slot& s : slots_) s = Slot{};
      gen_ = 1;
    }
  }

 private:
  static constexpr unsigned kPageBits = 34;
  static constexpr uint64_t kGenLimit = uint64_t(1) << (64 - kPageBits);
  struct Slot {
    uint64_t key = 0;    // gen << 34 | page; generation 0 is never current (gen_ >= 1)
    uint64_t lines = 0;  // bit i: line i of the page is in the set
  };
  static size_t hash(uint64_t k) { return size_t((k * 0x9E3779B97F4A7C15ull) >> 17); }
  void grow() {  // doubles the table, keeping the current generation's pages
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(old.size() * 2, Slot{});
    size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if ((s.key >> kPageBits) != gen_) continue;
      size_t i = hash(s.key & ((uint64_t(1) << kPageBits) - 1)) & mask;
      while ((slots_[i].key >> kPageBits) == gen_) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  uint64_t gen_ = 1;
  size_t count_ = 0;  // pages in the set
  Pager::WriteCache* wc_ = nullptr;
};

// ---- durability 'full': I/O shim, CRC32C, write-ahead log -------------------------
// Every 'full'-mode write/sync/allocation of the store and its log goes through
// io_pwrite / io_fsync / io_fallocate (F7). With PERSIST_IO_TRACE=<file> each one is
// also appended to that trace (the power-cut harness rebuilds disk images from it);
// PERSIST_IO_FAIL=<kind>:<n> (kind fsync|pwrite|nospc) makes the n-th call of that
// kind fail with EIO (nospc: ENOSPC on the n-th pwrite) — the tests' fault injection.
// PERSIST_TEST_DIE=<point>:<n> (point unlocked|synced) makes the process kill itself
// with SIGKILL the n-th time a group commit reaches that point (after its unlock and
// before its log sync / after the sync and before the store writes): the tests' way
// to place a kill -9 exactly.
enum IoFile : uint8_t { IO_MAIN = 0, IO_WAL = 1 };

struct IoShim {
  int trace_fd = -1;
  int fail_kind = 0;  // 0 none, 1 fsync, 2 pwrite(EIO), 3 pwrite(ENOSPC)
  uint64_t fail_at = 0;
  uint64_t n_fsync = 0, n_pwrite = 0;
  uint64_t fsyncs = 0;  // completed syncs (bench: syncs per commit)
  uint64_t sync_token = 0;  // pairs a 'B' (sync begins) with its 'S' in the trace
  std::string trace_path;
  std::string die_point;
  uint64_t die_at = 0, die_count = 0;
  // Re-reads PERSIST_IO_TRACE (called by every open, so a harness process can trace
  // one open and not the next).
  void refresh() {
    const char* t = getenv("PERSIST_IO_TRACE");
    std::string want = t ? t : "";
    if (want == trace_path) return;
    if (trace_fd >= 0) ::close(trace_fd);
    trace_fd = -1;
    trace_path = want;
    if (!want.empty()) trace_fd = ::open(want.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  }
  IoShim() {
    refresh();
    const char* f = getenv("PERSIST_IO_FAIL");
    if (f && *f) {
      std::string v(f);
      size_t c = v.find(':');
      std::string k = v.substr(0, c);
      fail_kind = k == "fsync" ? 1 : k == "pwrite" ? 2 : k == "nospc" ? 3 : 0;
      fail_at = c == std::string::npos ? 1 : strtoull(v.c_str() + c + 1, nullptr, 10);
    }
    const char* d = getenv("PERSIST_TEST_DIE");
    if (d && *d) {
      std::string v(d);
      size_t c = v.find(':');
      die_point = v.substr(0, c);
      die_at = c == std::string::npos ? 1 : strtoull(v.c_str() + c + 1, nullptr, 10);
    }
  }
  void test_point(const char* name) {
    if (die_at == 0 || die_point != name) return;
    if (++die_count == die_at) kill(getpid(), SIGKILL);
  }
  // Trace record: u8 type ('W' write, 'B' sync begins, 'S' sync done, 'A' allocate,
  // 'C' commit returned, 'R'/'E' recovery start/end), u8 file, u16 0, u32 data length,
  // u64 offset (for 'A' the new minimum size, for 'C' the txid, for 'B'/'S' a token
  // (pid << 32 | n) pairing them: with several processes tracing into one file, a
  // sync makes durable exactly the writes traced before its 'B'), then the data.
  void trace(char type, uint8_t file, uint64_t off, const void* data, uint32_t len) {
    if (trace_fd < 0) return;
    std::string b(16, '\0');
    b[0] = char(type);
    b[1] = char(file);
    std::memcpy(&b[4], &len, 4);
    std::memcpy(&b[8], &off, 8);
    if (len) b.append(static_cast<const char*>(data), size_t(len));
    size_t done = 0;
    while (done < b.size()) {
      ssize_t w = ::write(trace_fd, b.data() + done, b.size() - done);
      if (w <= 0) break;
      done += size_t(w);
    }
  }
};
IoShim& io() {
  static IoShim s;
  return s;
}

// Returns 0 or an errno. Writes everything (retries short writes and EINTR).
int io_pwrite(int fd, uint8_t file, const void* data, uint64_t len, uint64_t off) {
  IoShim& s = io();
  ++s.n_pwrite;
  if ((s.fail_kind == 2 || s.fail_kind == 3) && s.n_pwrite == s.fail_at) return s.fail_kind == 2 ? EIO : ENOSPC;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t done = 0;
  while (done < len) {
    ssize_t w = ::pwrite(fd, p + done, size_t(len - done), off_t(off + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += uint64_t(w);
  }
  // Trace in pieces of at most 1 MiB (u32 length).
  for (uint64_t o = 0; o < len; o += (1u << 20))
    s.trace('W', file, off + o, p + o, uint32_t(std::min<uint64_t>(len - o, 1u << 20)));
  return 0;
}
int io_fsync(int fd, uint8_t file) {
  IoShim& s = io();
  ++s.n_fsync;
  if (s.fail_kind == 1 && s.n_fsync == s.fail_at) return EIO;
  // getpid() is a syscall: only when tracing
  uint64_t token = s.trace_fd >= 0 ? (uint64_t(getpid()) << 32) | (++s.sync_token & 0xFFFFFFFFu) : 0;
  s.trace('B', file, token, nullptr, 0);
  if (fdatasync(fd) != 0) return errno;
  ++s.fsyncs;
  s.trace('S', file, token, nullptr, 0);
  return 0;
}
int io_fallocate(int fd, uint8_t file, uint64_t off, uint64_t len) {
  int e = posix_fallocate(fd, off_t(off), off_t(len));
  if (e == 0) io().trace('A', file, off + len, nullptr, 0);
  return e;
}

// CRC32C with the SSE4.2 instruction (8 bytes per step) when the CPU has it; the
// table below otherwise. Same polynomial, same result (tested against each other).
#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_hw(const uint8_t* p, size_t n, uint32_t crc) {
  uint64_t c = ~crc & 0xFFFFFFFFu;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  uint32_t c32 = uint32_t(c);
  for (; n > 0; ++p, --n) c32 = __builtin_ia32_crc32qi(c32, *p);
  return ~c32;
}
#endif
uint32_t crc32c_table(const uint8_t* p, size_t n, uint32_t crc) {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // Castagnoli, reflected
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}
uint32_t crc32c(const uint8_t* p, size_t n, uint32_t crc = 0) {
#if defined(__x86_64__)
  // PERSIST_CRC_TABLE=1 forces the table (tests: a log written one way is read the other)
  static const bool hw = [] {
    __builtin_cpu_init();  // may run before libgcc's own constructor did
    return __builtin_cpu_supports("sse4.2") && getenv("PERSIST_CRC_TABLE") == nullptr;
  }();
  if (hw) return crc32c_hw(p, n, crc);
#endif
  return crc32c_table(p, n, crc);
}

constexpr uint64_t kWalCheckpointBytes = 4ull << 20;  // checkpoint once the log passes 4 MiB
constexpr uint64_t kWalPrealloc = kWalCheckpointBytes + (1u << 20);
constexpr uint64_t kWalTrailer = 8;

// Reads the current epoch from the two header slots; 0 if neither is valid.
uint64_t wal_read_epoch(int wfd) {
  uint64_t best = 0;
  for (int slot = 0; slot < 2; ++slot) {
    pst_wal_header h;
    if (pread(wfd, &h, sizeof h, off_t(slot * 512)) != ssize_t(sizeof h)) continue;
    if (h.wh_magic != PST_WAL_HEADER_MAGIC || h.wh_version != PST_WAL_VERSION) continue;
    if (crc32c(reinterpret_cast<const uint8_t*>(&h), offsetof(pst_wal_header, wh_crc)) != h.wh_crc) continue;
    if (h.wh_epoch % 2 != uint64_t(slot)) continue;
    best = std::max(best, h.wh_epoch);
  }
  return best;
}
// Writes the header of `epoch` into its slot (not synced). Returns 0 or errno.
int wal_write_epoch(int wfd, uint64_t epoch) {
  pst_wal_header h;
  std::memset(&h, 0, sizeof h);
  h.wh_magic = PST_WAL_HEADER_MAGIC;
  h.wh_version = PST_WAL_VERSION;
  h.wh_epoch = epoch;
  h.wh_crc = crc32c(reinterpret_cast<const uint8_t*>(&h), offsetof(pst_wal_header, wh_crc));
  return io_pwrite(wfd, IO_WAL, &h, sizeof h, (epoch % 2) * 512);
}

[[noreturn]] void io_fail(int e, const std::string& what) {
  throw Error(e == ENOSPC || e == EDQUOT ? Code::NOSPC : Code::IO, what + ": " + errno_text(e));
}

// Reads the record at byte `pos` of the log into buf and validates it completely:
// magic, epoch, txid above prev_txid, length, CRC32C, and every range inside
// wr_page_count pages and outside the lock area (I10). Returns false if there is no
// valid record there (torn, stale or foreign bytes: the log ends). The one parser of
// the log: recovery (pwrite sink), group-commit apply (pwrite sink) and the private
// overlay of begin() and of read-only openers (memcpy sink) all read through it (F11).
bool wal_read_record(int wfd, uint64_t epoch, uint64_t pos, uint64_t wsize, uint64_t prev_txid,
                     std::vector<uint8_t>& buf, pst_wal_record& r) {
  if (epoch == 0 || pos + sizeof(pst_wal_record) + kWalTrailer > wsize) return false;
  if (pread(wfd, &r, sizeof r, off_t(pos)) != ssize_t(sizeof r)) return false;
  if (r.wr_magic != PST_WAL_RECORD_MAGIC || r.wr_epoch != epoch || r.wr_txid <= prev_txid) return false;
  if (r.wr_bytes < sizeof r + kWalTrailer || r.wr_bytes % 8 != 0 || r.wr_bytes > wsize - pos) return false;
  if (r.wr_page_count < PST_INITIAL_PAGES || r.wr_page_count > (uint64_t(1) << 34)) return false;
  buf.resize(size_t(r.wr_bytes));
  if (pread(wfd, buf.data(), buf.size(), off_t(pos)) != ssize_t(buf.size())) return false;
  uint32_t crc;
  std::memcpy(&crc, buf.data() + buf.size() - kWalTrailer, 4);
  if (crc32c(buf.data(), buf.size() - kWalTrailer) != crc) return false;  // torn or stale: the log ends here
  uint64_t limit = r.wr_page_count * kPage, q = sizeof r;
  for (uint32_t i = 0; i < r.wr_ranges; ++i) {
    pst_wal_range g;
    if (q + sizeof g > buf.size() - kWalTrailer) return false;
    std::memcpy(&g, buf.data() + q, sizeof g);
    q += sizeof g;
    if (g.wg_len == 0 || g.wg_off + g.wg_len > limit || g.wg_off + g.wg_len < g.wg_off ||
        (g.wg_off < kPage && g.wg_off + g.wg_len > kHdrJournalBytes) || pad8(g.wg_len) > buf.size() - kWalTrailer - q)
      return false;
    q += pad8(g.wg_len);
  }
  return q == buf.size() - kWalTrailer;
}

// Calls f(off, data, len) for every range of a record validated by wal_read_record.
template <class F>
void wal_each_range(const std::vector<uint8_t>& buf, const pst_wal_record& r, F f) {
  uint64_t q = sizeof r;
  for (uint32_t i = 0; i < r.wr_ranges; ++i) {
    pst_wal_range g;
    std::memcpy(&g, buf.data() + q, sizeof g);
    q += sizeof g;
    f(g.wg_off, buf.data() + q, g.wg_len);
    q += pad8(g.wg_len);
  }
}

uint64_t fd_size(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? uint64_t(st.st_size) : 0;
}

// Applies one validated record to the store file with pwrite: the file first reaches
// wr_page_count pages (growth, F6). `known` = bytes the file is known to have (the
// caller's mapping, I2; 0 = unknown): no fstat when the record's pages fit in it.
// Returns 0 or an errno.
int wal_apply_record(int fd, const std::vector<uint8_t>& buf, const pst_wal_record& r, uint64_t known = 0) {
  uint64_t limit = r.wr_page_count * kPage;
  uint64_t size = limit <= known ? known : fd_size(fd);
  if (size < limit) {
    int e = io_fallocate(fd, IO_MAIN, size, limit - size);
    if (e) return e;
  }
  int e = 0;
  wal_each_range(buf, r, [&](uint64_t off, const uint8_t* data, uint64_t len) {
    if (!e) e = io_pwrite(fd, IO_MAIN, data, len, off);
  });
  return e;
}

// Recovery of 'full' mode (F5): makes the log durable, replays every valid record of
// the current epoch in order (stopping at the first torn or foreign one) into the
// store with pwrite, syncs the store, then starts a new epoch (header + sync). A cut
// at any point leaves either the old epoch (replayed again: records hold final bytes,
// so replay is idempotent) or the new one (whose replayed effects are already synced).
// Returns the new epoch; records then start at PST_WAL_FIRST_RECORD.
uint64_t wal_recover(int fd, int wfd, const std::string& path) {
  const std::string wpath = path + "-wal";
  IoShim& s = io();
  s.trace('R', IO_WAL, 0, nullptr, 0);
  int e = io_fsync(wfd, IO_WAL);
  if (e) io_fail(e, "cannot sync the log " + wpath);
  uint64_t epoch = wal_read_epoch(wfd);
  uint64_t wsize = fd_size(wfd);
  uint64_t pos = PST_WAL_FIRST_RECORD, prev_txid = 0, applied = 0;
  std::vector<uint8_t> buf;
  pst_wal_record r;
  while (wal_read_record(wfd, epoch, pos, wsize, prev_txid, buf, r)) {
    e = wal_apply_record(fd, buf, r);
    if (e) io_fail(e, "cannot write " + path + " while replaying its log");
    prev_txid = r.wr_txid;
    pos += r.wr_bytes;
    ++applied;
  }
  if (applied) {
    e = io_fsync(fd, IO_MAIN);
    if (e) io_fail(e, "cannot sync " + path + " after replaying its log");
  }
  e = wal_write_epoch(wfd, epoch + 1);
  if (e) io_fail(e, "cannot write the log header of " + wpath);
  e = io_fsync(wfd, IO_WAL);
  if (e) io_fail(e, "cannot sync the log " + wpath);
  s.trace('E', IO_WAL, applied, nullptr, 0);
  return epoch + 1;
}

// The opener protocol's OFD lock on byte 0 (FORMAT.md, locking): F_WRLCK = the only
// opener, F_RDLCK = open. `wait`: F_OFD_SETLKW instead of F_OFD_SETLK.
int lock_byte0(int fd, short type, bool wait) {
  struct flock fl;
  std::memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  return fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
}

// Opens (creating if asked) the log of `path`; a new log is preallocated and its
// directory synced, so a log that once held a durable record cannot vanish (F8).
int wal_open(const std::string& path, bool create, uint32_t mode) {
  const std::string wpath = path + "-wal";
  int wfd = ::open(wpath.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), mode);
  if (wfd < 0) {
    int e = errno;
    throw Error(e == EACCES || e == EPERM || e == EROFS ? Code::PERM : e == ENOSPC ? Code::NOSPC : Code::IO,
                "cannot open the log " + wpath + ": " + errno_text(e));
  }
  struct stat st;
  if (fstat(wfd, &st) == 0 && uint64_t(st.st_size) < kWalPrealloc && create) {
    // Preallocate by writing zeros, not posix_fallocate: overwriting fallocated
    // (unwritten) extents makes every fdatasync also commit an extent conversion in the
    // file system journal (measured: ~3.6 ms instead of ~0.1 ms per commit on ext4).
    std::vector<uint8_t> zeros(1u << 20, 0);
    int e = 0;
    for (uint64_t o = uint64_t(st.st_size); o < kWalPrealloc && !e; o += zeros.size())
      e = io_pwrite(wfd, IO_WAL, zeros.data(), std::min<uint64_t>(zeros.size(), kWalPrealloc - o), o);
    if (e) {
      ::close(wfd);
      io_fail(e, "cannot preallocate the log " + wpath);
    }
    if (fdatasync(wfd) != 0) {
      int e2 = errno;
      ::close(wfd);
      io_fail(e2, "cannot sync the log " + wpath);
    }
    std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
    if (dir.empty()) dir = "/";
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);  // the directory entries of the store and its log (F8)
      ::close(dfd);
    }
  }
  return wfd;
}

}  // namespace

struct Pager::Impl {
  std::string path;
  OpenOptions opts;
  int fd = -1;
  bool file_ro = false;  // O_RDONLY + PROT_READ: no lock, no writes
  uint64_t pid = uint64_t(getpid());  // cached: getpid() is a real syscall (~150 ns)
  bool closed = false;
  uint8_t* base = nullptr;
  uint64_t reserve = 0;  // bytes reserved (I1)
  uint64_t mapped = 0;   // bytes mapped (I1)
  uint32_t map_gen = 1;

  // transaction state
  bool in_txn = false;
  bool locked = false;     // holds lk_mutex
  bool wrote = false;      // anything changed in this transaction
  bool hdr_journaled = false;  // header image [0,256) journaled since the latest savepoint
  uint64_t last_txid = 0;  // hd_txid seen at the end of our latest transaction
  uint64_t own_txid = 0;   // hd_txid of our latest commit that wrote (own_commit_txid)
  uint64_t jr_chunk = 0;   // page of the chunk the next entry goes to
  uint64_t jr_off = 0;     // byte offset in that chunk of the next entry
  uint64_t jr_count = 0;   // mirror of hd_jr_entries while we hold the lock
  bool jr_allocating = false;  // allocating the next journal chunk: may use the reserve (I6)
  std::vector<uint64_t> deferred;     // run starts freed in this transaction (I7)
  std::map<uint64_t, uint64_t> fresh;  // fresh runs: start page -> end page (exclusive)
  LineSet lines;
  std::vector<uint64_t> jchunks;  // pages of the journal chunk chain (refreshed per txn)
  // First-fit search hints (I15): ff_from[n] = a page below which no free region of at
  // least n pages starts, valid while ff_serial / ff_txid match the write cache serial
  // and hd_txid. Any page freed (apply_mark, rollback), any growth and any other
  // commit reset them, so find_free() returns exactly what a scan from hd_free_hint would.
  static constexpr uint64_t kFfMax = 64;  // hints for runs of 1..64 pages
  const Pager::WriteCache* wcp = nullptr;
  uint64_t ff_serial = 0, ff_txid = 0;
  uint64_t ff_from[kFfMax + 1] = {};
  void ff_reset() { ff_serial = 0; }

  // durability 'full' (F1-F8)
  bool full = false;            // MAP_PRIVATE view + write-ahead log
  uint8_t* lockview = nullptr;  // page 0 mapped MAP_SHARED: the lock area (F2)
  int wal_fd = -1;
  bool poisoned = false;        // a sync/write failed: no more writes until reopened (F9)
  // Byte ranges changed in this transaction (whole transaction, never cleared by a
  // savepoint): journaled ranges, fresh runs (as byte ranges), growth's map bytes (F3).
  std::vector<std::pair<uint64_t, uint64_t>> redo;
  // group commit (F11-F16)
  bool ro_overlay = false;  // read-only handle of a store with a log: private view + overlay (F16)
  std::vector<std::pair<uint64_t, uint64_t>> overlay;  // pages [a, b) made private by the overlay (F14)
  uint64_t seen_written = 0;  // wl_written (LSN) when this transaction began (F14)
  uint32_t seen_fails = 0;    // wl_fails when this transaction began (F13)
  std::vector<uint8_t> wal_buf;  // scratch record buffer
  // This handle's latest published record (F11 exception): the bytes it wrote to the
  // log at byte own_rec_at of epoch own_rec_epoch, applied from memory instead of
  // being read back. Empty once applied or when another handle may have applied it.
  std::vector<uint8_t> own_rec;
  uint64_t own_rec_at = 0, own_rec_epoch = 0;

  pst_header* hdr() const { return reinterpret_cast<pst_header*>(base); }
  pst_lock* lk() const {
    return lockview ? &reinterpret_cast<pst_header*>(lockview)->hd_lock : &hdr()->hd_lock;
  }
  pst_wal_lock* wl() const {
    return reinterpret_cast<pst_wal_lock*>((lockview ? lockview : base) + PST_WAL_LOCK_OFFSET);
  }
  bool priv() const { return full || ro_overlay; }  // the store is mapped MAP_PRIVATE (F1, F16)
  uint64_t page_count() const { return __atomic_load_n(&hdr()->hd_page_count, __ATOMIC_ACQUIRE); }

  // ---- errors -------------------------------------------------------------
  [[noreturn]] void fail(Code c, const std::string& m) const { throw Error(c, m); }
  void need_open() const {
    if (closed) fail(Code::CLOSED, "the store " + path + " is closed; open it again to use it");
  }
  void need_txn() const {
    need_open();
    if (!in_txn) fail(Code::TXN, "no transaction is active: call begin() first (or use transaction(fn))");
  }
  void need_write() const {
    need_txn();
    if (opts.readonly || file_ro)
      fail(Code::READONLY, "the store " + path + " was opened read-only; open it without readonly to change it");
    if (poisoned)
      fail(Code::IO, "an earlier write or sync of " + path +
                         " failed, so this handle refuses writes (F9); close it and open the store again");
  }

  // ---- page map -----------------------------------------------------------
  uint8_t* map_alloc_byte(uint64_t page) const {
    return base + PST_MAP_PAGE(page / PST_MAP_SPAN) * kPage + (page % PST_MAP_SPAN) / 8;
  }
  uint8_t* map_start_byte(uint64_t page) const { return map_alloc_byte(page) + kMapHalf; }
  bool is_alloc(uint64_t page) const { return (*map_alloc_byte(page) >> (page & 7)) & 1; }
  bool is_start(uint64_t page) const { return (*map_start_byte(page) >> (page & 7)) & 1; }
  static void set_bit(uint8_t* b, uint64_t page, bool v) {
    uint8_t m = uint8_t(1u << (page & 7));
    *b = v ? uint8_t(*b | m) : uint8_t(*b & ~m);
  }
  static bool is_map_page(uint64_t page) {
    uint64_t k = page / PST_MAP_SPAN;
    uint64_t first = PST_MAP_PAGE(k);
    return page >= first && page < first + PST_MAP_CHUNK_PAGES;
  }
  bool is_journal_page(uint64_t page) const {
    for (uint64_t c : jchunks)
      if (page >= c && page < c + PST_JOURNAL_CHUNK_PAGES) return true;
    return false;
  }
  // True if [p0, p1] (inclusive) touches a page of the pager itself (I9).
  bool touches_own(uint64_t p0, uint64_t p1) const {
    if (p0 == 0) return true;
    for (uint64_t k = p0 / PST_MAP_SPAN; k <= p1 / PST_MAP_SPAN; ++k) {
      uint64_t first = PST_MAP_PAGE(k);
      if (p0 < first + PST_MAP_CHUNK_PAGES && p1 >= first) return true;
    }
    for (uint64_t c : jchunks)
      if (p0 < c + PST_JOURNAL_CHUNK_PAGES && p1 >= c) return true;
    return false;
  }

  // Length of the run starting at `page` (caller checked it is an allocated run start).
  uint64_t run_len_from(uint64_t page) const {
    uint64_t count = page_count();
    uint64_t p = page + 1;
    while (p < count) {
      // Skip 8 pages at a time when the whole byte is "allocated, not a start".
      if ((p & 7) == 0 && p + 8 <= count && *map_alloc_byte(p) == 0xFF && *map_start_byte(p) == 0) {
        p += 8;
        continue;
      }
      if (!is_alloc(p) || is_start(p)) break;
      ++p;
    }
    return p - page;
  }

  // First-fit: the lowest page >= hd_free_hint starting n free pages below
  // hd_page_count, or kNone. *trail gets the first page of the free tail of the store
  // (== page_count when the last page is allocated), used to size growth.
  uint64_t find_free(uint64_t n, uint64_t* trail) {
    uint64_t count = page_count();
    uint64_t p = std::min(hdr()->hd_free_hint, count);
    if (n <= kFfMax) {  // I15: skip what earlier searches of this epoch proved holds no fit
      if (ff_serial != wcp->serial || ff_txid != hdr()->hd_txid) {
        std::fill(std::begin(ff_from), std::end(ff_from), 0);
        ff_serial = wcp->serial;
        ff_txid = hdr()->hd_txid;
      }
      p = std::max(p, std::min(ff_from[n], count));
    }
    uint64_t run = 0, run_start = p;
    while (p < count) {
      // 64 pages per step: one little-endian word of the allocation bitmap (bit i =
      // page p+i; a span holds a whole number of words, so the word is in one chunk).
      if ((p & 63) == 0 && p + 64 <= count) {
        uint64_t w;
        std::memcpy(&w, map_alloc_byte(p), 8);
        if (w == ~uint64_t(0)) {
          run = 0;
          p += 64;
          run_start = p;
          continue;
        }
        unsigned i = 0;
        while (i < 64) {
          uint64_t rest = w >> i;
          if (rest & 1) {  // allocated pages: the run restarts after them
            i += unsigned(__builtin_ctzll(~rest));  // ~rest != 0: w != ~0, and for i > 0 zeros were shifted in
            run = 0;
            run_start = p + i;
          } else {  // free pages
            unsigned zeros = rest == 0 ? 64 - i : unsigned(__builtin_ctzll(rest));
            if (run == 0) run_start = p + i;
            run += zeros;
            if (run >= n) return run_start;
            i += zeros;
          }
        }
        p += 64;
        continue;
      }
      if (is_alloc(p)) {
        run = 0;
        run_start = p + 1;
      } else {
        if (run == 0) run_start = p;
        if (++run >= n) return run_start;
      }
      ++p;
    }
    *trail = run == 0 ? count : run_start;
    return kNone;
  }

  // ---- journal --------------------------------------------------------------
  pst_journal_chunk* chunk_at(uint64_t page) const { return reinterpret_cast<pst_journal_chunk*>(base + page * kPage); }

  bool chunk_ok(uint64_t page, uint64_t count) const {  // I10
    return page >= PST_FIRST_JOURNAL_PAGE && page < count && count - page >= PST_JOURNAL_CHUNK_PAGES &&
           (page + PST_JOURNAL_CHUNK_PAGES) * kPage <= mapped && chunk_at(page)->jc_magic == PST_JOURNAL_MAGIC &&
           chunk_at(page)->jc_pages == PST_JOURNAL_CHUNK_PAGES;
  }

  // Walks the chunk chain into jchunks. Throws CORRUPT on a bad chain.
  void load_chain() {
    jchunks.clear();
    uint64_t count = page_count();
    uint64_t c = hdr()->hd_jr_first;
    uint64_t limit = count / PST_JOURNAL_CHUNK_PAGES + 1;
    while (c != 0) {
      if (!chunk_ok(c, count) || jchunks.size() > limit)
        fail(Code::CORRUPT, "the journal chain of " + path + " is damaged (chunk at page " + std::to_string(c) +
                                "); the store cannot be recovered automatically");
      jchunks.push_back(c);
      c = chunk_at(c)->jc_next;
    }
    if (jchunks.empty()) fail(Code::CORRUPT, "the journal of " + path + " is missing (hd_jr_first = 0)");
  }

  struct EntryPos {
    uint64_t chunk, off;  // chunk page, byte offset of the entry header in the chunk
  };

  // Reads the positions of the first `n` entries of the journal, validating every one
  // (I10). Throws CORRUPT. Returns fewer than `n` when an END marker comes first (I13).
  std::vector<EntryPos> collect_entries(uint64_t n) const {
    std::vector<EntryPos> out;
    out.reserve(size_t(std::min<uint64_t>(n, 1u << 20)));
    uint64_t count = page_count();
    uint64_t c = hdr()->hd_jr_first;
    uint64_t pos = kChunkHdr;
    uint64_t hops = 0, max_hops = count / PST_JOURNAL_CHUNK_PAGES + 1;
    auto bad = [&](const std::string& why) {
      fail(Code::CORRUPT, "the journal of " + path + " is damaged (" + why + " at entry " + std::to_string(out.size() + 1) +
                              " of " + std::to_string(n) + "); the store cannot be recovered automatically");
    };
    if (!chunk_ok(c, count)) bad("bad first chunk");
    for (uint64_t i = 1; i <= n; ++i) {
      const pst_journal_entry* e = nullptr;
      if (pos + kEntryHdr <= kChunkBytes) e = reinterpret_cast<const pst_journal_entry*>(base + c * kPage + pos);
      if (e != nullptr && e->je_len == 0 && e->je_off == PST_JOURNAL_END) break;  // I13: count damaged
      if (e == nullptr || e->je_len == 0) {
        c = chunk_at(c)->jc_next;
        if (++hops > max_hops || !chunk_ok(c, count)) bad("bad chunk chain");
        pos = kChunkHdr;
        e = reinterpret_cast<const pst_journal_entry*>(base + c * kPage + pos);
        if (e->je_len == 0 && e->je_off == PST_JOURNAL_END) break;  // I13
      }
      if (e->je_seq != uint32_t(i)) bad("sequence number " + std::to_string(e->je_seq));
      if (e->je_len == 0 || pos + kEntryHdr + e->je_len > kChunkBytes) bad("bad length");
      uint64_t end = e->je_off + e->je_len;
      if (end < e->je_off || end > mapped) bad("offset outside the store");
      if (e->je_off < kPage && end > kHdrJournalBytes) bad("entry covers the lock area");
      out.push_back({c, pos});
      pos += kEntryHdr + pad8(e->je_len);
    }
    return out;
  }

  // Undo entries newest first down to (excluding) entry `keep` (I5). Returns the
  // position after entry `keep`.
  void rollback_entries(uint64_t keep) {
    ff_reset();  // I15: restored map bytes may free pages
    uint64_t n = __atomic_load_n(&hdr()->hd_jr_entries, __ATOMIC_ACQUIRE);
    std::vector<EntryPos> pos = collect_entries(n);
    n = pos.size();  // I13: a damaged count stops at the END marker
    if (keep > n) keep = n;
    for (uint64_t i = n; i > keep; --i) {
      const EntryPos& p = pos[i - 1];
      const pst_journal_entry* e = reinterpret_cast<const pst_journal_entry*>(base + p.chunk * kPage + p.off);
      const uint8_t* data = reinterpret_cast<const uint8_t*>(e + 1);
      uint64_t off = e->je_off, len = e->je_len;
      if (off < kJrEntriesOff + 8 && off + len > kJrEntriesOff) {
        // Never restore hd_jr_entries (I5): copy around it.
        uint64_t a = kJrEntriesOff - std::min(off, kJrEntriesOff);
        if (off < kJrEntriesOff) std::memcpy(base + off, data, a);
        uint64_t b0 = kJrEntriesOff + 8;
        if (off + len > b0) {
          uint64_t skip = b0 > off ? b0 - off : 0;
          std::memcpy(base + off + skip, data + skip, len - skip);
        }
      } else {
        std::memcpy(base + off, data, len);
      }
      __atomic_store_n(&hdr()->hd_jr_entries, i - 1, __ATOMIC_RELEASE);  // I5
      if (testing::rollback_hook) testing::rollback_hook(i - 1 - keep);
    }
    // A count damaged upwards (I13) had nothing past n: drop the excess too.
    if (__atomic_load_n(&hdr()->hd_jr_entries, __ATOMIC_ACQUIRE) != keep)
      __atomic_store_n(&hdr()->hd_jr_entries, keep, __ATOMIC_RELEASE);
    if (keep == 0) {
      jr_chunk = hdr()->hd_jr_first;
      jr_off = kChunkHdr;
      mark_end();  // I13: the empty journal starts with END
    } else {
      const EntryPos& p = pos[keep - 1];
      const pst_journal_entry* e = reinterpret_cast<const pst_journal_entry*>(base + p.chunk * kPage + p.off);
      jr_chunk = p.chunk;
      jr_off = p.off + kEntryHdr + pad8(e->je_len);
    }
    jr_count = keep;
  }

  // Moves the writer to the next chunk, allocating it if the chain ends here (I6).
  void next_chunk() {
    pst_journal_chunk* cur = chunk_at(jr_chunk);
    uint64_t next = cur->jc_next;
    if (next == 0) {
      assert(!jr_allocating);
      jr_allocating = true;
      try {
        next = alloc_run(PST_JOURNAL_CHUNK_PAGES);
      } catch (...) {
        jr_allocating = false;
        throw;
      }
      pst_journal_chunk* nc = chunk_at(next);  // fresh pages: no undo needed (I3)
      nc->jc_magic = PST_JOURNAL_MAGIC;
      nc->jc_next = 0;
      nc->jc_pages = PST_JOURNAL_CHUNK_PAGES;
      nc->jc_reserved = 0;
      uint64_t link = jr_chunk * kPage + offsetof(pst_journal_chunk, jc_next);
      append_entry(link, 8);  // exact 8 bytes: never the entries sharing the line (I5)
      cur->jc_next = next;
      jr_allocating = false;
      jchunks.push_back(next);
    } else if (!chunk_ok(next, page_count())) {
      fail(Code::CORRUPT, "the journal chain of " + path + " is damaged (chunk at page " + std::to_string(next) + ")");
    }
    if (jr_off + kEntryHdr <= kChunkBytes) std::memset(base + jr_chunk * kPage + jr_off, 0, kEntryHdr);  // terminator (I6)
    jr_chunk = next;
    jr_off = kChunkHdr;
  }

  // After the commit point ('process' mode): the journal is empty, so its first slot
  // gets the END marker (I13) — a count damaged from 0 then reads no stale entry.
  void end_at_start() {
    uint64_t c = hdr()->hd_jr_first;
    if (chunk_ok(c, page_count())) write_end(c, kChunkHdr);
  }

  void write_end(uint64_t chunk, uint64_t off) {  // the END marker (I13)
    auto* e = reinterpret_cast<pst_journal_entry*>(base + chunk * kPage + off);
    e->je_off = PST_JOURNAL_END;
    e->je_len = 0;
    e->je_seq = 0;
  }

  // Writes the END marker in the slot after the last entry (I13).
  void mark_end() {
    uint64_t chunk = jr_chunk, off = jr_off;
    if (off + kEntryHdr > kChunkBytes) {  // the chunk is full: the reader continues at jc_next
      chunk = chunk_at(jr_chunk)->jc_next;
      if (chunk == 0 || !chunk_ok(chunk, page_count())) return;  // chain ends: a reader fails there
      off = kChunkHdr;
    }
    write_end(chunk, off);
  }

  // Saves the bytes [off, off+len) as undo entries (I3, I4).
  void append_entry(uint64_t off, uint64_t len) {
    while (len > 0) {
      uint64_t limit = kChunkBytes - (jr_allocating ? 0 : kJrReserve);
      uint64_t avail = limit > jr_off + kEntryHdr ? limit - jr_off - kEntryHdr : 0;
      if (avail < std::min<uint64_t>(len, kLine)) {
        if (jr_allocating)
          fail(Code::CORRUPT, "internal error: the journal reserve is exhausted (please report)");
        next_chunk();
        continue;
      }
      uint64_t piece = std::min(len, avail & ~uint64_t(7));
      put_entry(off, piece);
      mark_end();  // I13, before the count (I4)
      __atomic_store_n(&hdr()->hd_jr_entries, ++jr_count, __ATOMIC_RELEASE);  // I4
      off += piece;
      len -= piece;
    }
  }

  // Writes entry header + undo image of [off, off + len) at jr_off of the current chunk
  // (the caller checked that it fits, I6) and advances jr_off; not counted yet (I4).
  void put_entry(uint64_t off, uint64_t len) {
    auto* e = reinterpret_cast<pst_journal_entry*>(base + jr_chunk * kPage + jr_off);
    e->je_off = off;
    e->je_len = uint32_t(len);
    e->je_seq = uint32_t(jr_count + 1);
    std::memcpy(e + 1, base + off, len);
    if (full) redo.emplace_back(off, len);  // F3
    jr_off += kEntryHdr + pad8(len);
  }

  // append_entry(off, kLine) when the entry and the END marker after it fit in the
  // current chunk (I4, I6, I13: same steps, fixed size, no chunk change).
  void append_line(uint64_t off) {
    uint64_t limit = kChunkBytes - (jr_allocating ? 0 : kJrReserve);
    if (jr_off + kEntryHdr + kLine + kEntryHdr > limit) return append_entry(off, kLine);
    put_entry(off, kLine);
    write_end(jr_chunk, jr_off);  // I13, before the count (I4); in this chunk (checked above)
    __atomic_store_n(&hdr()->hd_jr_entries, ++jr_count, __ATOMIC_RELEASE);  // I4
  }

  void journal_header() {
    if (hdr_journaled) return;
    append_entry(0, kHdrJournalBytes);
    hdr_journaled = true;
  }

  bool page_fresh(uint64_t page) const {
    if (fresh.empty()) return false;
    auto it = fresh.upper_bound(page);
    if (it == fresh.begin()) return false;
    --it;
    return page < it->second;
  }
  void add_fresh(uint64_t page, uint64_t n) {
    fresh[page] = page + n;
    if (full) redo.emplace_back(page * kPage, n * kPage);  // F3
  }

  // Journals the 64-byte lines covering [off, off+len) that are neither journaled
  // since the latest savepoint nor in fresh pages (I3, I11). Consecutive lines
  // become one entry.
  void journal_lines(uint64_t off, uint64_t len) {
    uint64_t l0 = off / kLine, l1 = (off + len - 1) / kLine;
    if (l0 == l1) {  // one line (a counter, a link, a bitmap word): the common barrier
      if (lines.insert(l0) && (fresh.empty() || !page_fresh(l0 * kLine / kPage))) append_line(l0 * kLine);
      return;
    }
    uint64_t run0 = 0, runn = 0;
    uint64_t fresh_page = kNone, stale_page = kNone;
    for (uint64_t l = l0; l <= l1; ++l) {
      if (!lines.insert(l)) {  // already journaled
        if (runn) append_entry(run0 * kLine, runn * kLine), runn = 0;
        continue;
      }
      uint64_t pg = l * kLine / kPage;
      bool fr;
      if (pg == fresh_page) fr = true;
      else if (pg == stale_page) fr = false;
      else if ((fr = page_fresh(pg))) fresh_page = pg;
      else stale_page = pg;
      if (fr) {
        if (runn) append_entry(run0 * kLine, runn * kLine), runn = 0;
        continue;
      }
      if (runn == 0) run0 = l;
      ++runn;
    }
    if (runn) append_entry(run0 * kLine, runn * kLine);
  }

  // Journals the page-map bytes of [page, page+n) (both bitmaps). May allocate a
  // journal chunk, i.e. take free pages: callers that are about to mark free pages
  // allocated must re-check them afterwards (I12).
  void journal_map(uint64_t page, uint64_t n) {
    uint8_t* a0 = map_alloc_byte(page);
    uint8_t* a1 = map_alloc_byte(page + n - 1);
    journal_lines(uint64_t(a0 - base), uint64_t(a1 - a0) + 1);
    // Start bits inside the range are already clear in a consistent map, but journal
    // them all so even a damaged map is restored exactly (I3).
    journal_lines(uint64_t(map_start_byte(page) - base), uint64_t(a1 - a0) + 1);
  }

  // Sets the bits of [page, page+n): allocated (first page a run start) or free.
  // The bytes must have been journaled (journal_map) first.
  void apply_mark(uint64_t page, uint64_t n, bool alloc) {
    if (!alloc) ff_reset();  // I15: a freed region may be a new fit anywhere
    uint64_t p = page, end = page + n;
    while (p < end) {
      if ((p & 7) == 0 && p + 8 <= end) {
        uint64_t bytes = (end - p) / 8;
        std::memset(map_alloc_byte(p), alloc ? 0xFF : 0, bytes);
        std::memset(map_start_byte(p), 0, bytes);
        p += bytes * 8;
        continue;
      }
      set_bit(map_alloc_byte(p), p, alloc);
      set_bit(map_start_byte(p), p, false);
      ++p;
    }
    set_bit(map_start_byte(page), page, alloc);
  }

  // Marks an allocated run free (journaled). Safe against journal growth: the run
  // is still allocated while its bytes are journaled, so a new chunk cannot land in it.
  void mark_free(uint64_t page, uint64_t n) {
    journal_map(page, n);
    apply_mark(page, n, false);
  }

  // ---- growth -----------------------------------------------------------------
  void map_to(uint64_t bytes) {  // I1
    void* r;
    if (bytes > mapped && mapped > 0) {
      // Growth maps only the extension, with the flags of the mapping below it: pages
      // already mapped keep their page-table entries (no refault of the whole store
      // after each growth), and in 'full' mode the private pages of the open
      // transaction survive (F1).
      int prot = file_ro && !ro_overlay ? PROT_READ : PROT_READ | PROT_WRITE;  // as below
      r = mmap(base + mapped, bytes - mapped, prot, (priv() ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED, fd, off_t(mapped));
      // Pages the store just grew by are fresh (zeros, or written moments ago and in the
      // page cache): read-ahead on their faults only zero-fills neighbours (ext4: ~32
      // pages per fault of an unwritten extent). Only this process's mapping of the
      // extension gets the advice; a later open maps the file with the default.
      if (r != MAP_FAILED) madvise(base + mapped, bytes - mapped, MADV_RANDOM);
    } else {
      // F16: a private writable mapping of a read-only fd is allowed (the overlay).
      r = mmap(base, bytes, file_ro && !ro_overlay ? PROT_READ : PROT_READ | PROT_WRITE,
               (priv() ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED, fd, 0);
    }
    if (r == MAP_FAILED) fail(Code::IO, "cannot map " + path + ": " + errno_text(errno));
    if (bytes != mapped) {
      mapped = bytes;
      ++map_gen;
    }
  }

  uint64_t file_size() const {
    struct stat st;
    if (fstat(fd, &st) != 0) fail(Code::IO, "cannot stat " + path + ": " + errno_text(errno));
    return uint64_t(st.st_size);
  }

  // Extends the mapping to cover hd_page_count (another process grew the file).
  bool sync_mapping() {
    uint64_t count = page_count();
    if (count * kPage <= mapped) return false;
    if (count > reserve / kPage)
      fail(Code::TOO_BIG, "the store " + path + " has grown to " + std::to_string(count * kPage) +
                              " bytes, beyond maxSize (" + std::to_string(reserve) + "); open it with a larger maxSize");
    if (count * kPage > file_size())
      fail(Code::CORRUPT, "the store " + path + " is truncated: the header says " + std::to_string(count) +
                              " pages but the file is shorter");
    if (count % PST_MAP_SPAN != 0 && count % PST_MAP_SPAN < PST_MAP_CHUNK_PAGES)  // I10: map chunk inside the mapping
      fail(Code::CORRUPT, "the store " + path + " is damaged: page count " + std::to_string(count) + " cuts a page-map chunk");
    map_to(count * kPage);
    return true;
  }

  // Grows the store to at least new_count pages (I1, I2). Journals the header.
  void grow_to(uint64_t new_count) {
    ff_reset();  // I15: the trailing free region grows
    // Journal the header before reading anything: journaling may itself allocate a
    // journal chunk (and grow), which must not be overwritten below (I12).
    journal_header();
    uint64_t old = page_count();
    if (new_count <= old) return;
    // A new 1 GiB range needs its map chunk at its first page (format).
    for (uint64_t k = (old + PST_MAP_SPAN - 1) / PST_MAP_SPAN; k * PST_MAP_SPAN < new_count; ++k)
      new_count = std::max<uint64_t>(new_count, k * PST_MAP_SPAN + PST_MAP_CHUNK_PAGES);
    if (new_count > reserve / kPage)
      fail(Code::TOO_BIG, "the store " + path + " would grow to " + std::to_string(new_count * kPage) +
                              " bytes, beyond maxSize (" + std::to_string(reserve) + "); open it with a larger maxSize");
    uint64_t need = new_count * kPage, have = file_size();
    if (have < need) {
      int e = full ? io_fallocate(fd, IO_MAIN, have, need - have) : posix_fallocate(fd, off_t(have), off_t(need - have));
      if (e == ENOSPC || e == EDQUOT || e == EFBIG)
        fail(Code::NOSPC, std::string(e == EFBIG ? "the file size limit (ulimit -f) prevents growing "
                                                 : "no space left on the device to grow ") +
                              path + " to " + std::to_string(need) +
                              " bytes; free some disk space (the transaction can still be aborted, or committed without this allocation)");
      if (e != 0) fail(Code::IO, "cannot grow " + path + ": " + errno_text(e));
    }
    if (need > mapped) map_to(need);
    uint64_t chunk_pages = 0;
    for (uint64_t p = old; p < new_count;) {
      uint64_t k = p / PST_MAP_SPAN;
      if (p == k * PST_MAP_SPAN && k > 0) {  // a fresh map chunk: zero it, own pages allocated
        std::memset(base + PST_MAP_PAGE(k) * kPage, 0, PST_MAP_CHUNK_PAGES * kPage);
        for (uint64_t i = 0; i < PST_MAP_CHUNK_PAGES; ++i) set_bit(map_alloc_byte(p + i), p + i, true);
        set_bit(map_start_byte(p), p, true);
        chunk_pages += PST_MAP_CHUNK_PAGES;
        p += PST_MAP_CHUNK_PAGES;
        continue;
      }
      // Pages beyond the old count: bits are "don't care", clear them (I3: no undo).
      uint64_t end = std::min(new_count, (k + 1) * PST_MAP_SPAN);
      while (p < end) {
        if ((p & 7) == 0 && p + 8 <= end) {
          uint64_t bytes = (end - p) / 8;
          std::memset(map_alloc_byte(p), 0, bytes);
          std::memset(map_start_byte(p), 0, bytes);
          p += bytes * 8;
          continue;
        }
        set_bit(map_alloc_byte(p), p, false);
        set_bit(map_start_byte(p), p, false);
        ++p;
      }
    }
    if (full) {  // F3: the map bytes of the new pages were changed without journaling (I3)
      for (uint64_t k = old / PST_MAP_SPAN; k * PST_MAP_SPAN < new_count; ++k) {
        uint64_t a = std::max(old, k * PST_MAP_SPAN), b = std::min(new_count, (k + 1) * PST_MAP_SPAN);
        if (a >= b) continue;
        if (a == k * PST_MAP_SPAN && k > 0) {
          redo.emplace_back(PST_MAP_PAGE(k) * kPage, PST_MAP_CHUNK_PAGES * kPage);
          continue;
        }
        uint64_t a0 = uint64_t(map_alloc_byte(a) - base), a1 = uint64_t(map_alloc_byte(b - 1) - base) + 1;
        redo.emplace_back(a0, a1 - a0);
        redo.emplace_back(a0 + kMapHalf, a1 - a0);
      }
    }
    hdr()->hd_free_pages += (new_count - old) - chunk_pages;
    __atomic_store_n(&hdr()->hd_page_count, new_count, __ATOMIC_RELEASE);
    wrote = true;
  }

  // Page count to grow to when `needed` more pages are required: a step of
  // max(needed, count/8, 256) pages (amortises fallocate + mmap), clamped to the
  // reservation when only the step (not the need) exceeds it.
  uint64_t growth_target(uint64_t count, uint64_t needed) const {
    uint64_t t = count + std::max<uint64_t>({needed, count / 8, 256});
    uint64_t limit = reserve / kPage;
    if (t > limit) t = std::max(count + needed, limit);
    return t;
  }

  // Allocates n contiguous pages (journaled, fresh). Used by alloc_pages and by the
  // journal itself.
  uint64_t alloc_run(uint64_t n) {
    if (n == 0) fail(Code::INVALID, "allocPages: the page count must be at least 1");
    if (n > PST_MAP_SPAN - PST_MAP_CHUNK_PAGES)
      fail(Code::TOO_BIG, "allocPages: " + std::to_string(n) + " pages is more than one run can hold (" +
                              std::to_string(PST_MAP_SPAN - PST_MAP_CHUNK_PAGES) + " pages)");
    journal_header();
    for (;;) {
      uint64_t trail = 0;
      size_t chunks = jchunks.size();
      uint64_t p = find_free(n, &trail);
      if (p != kNone) {
        journal_map(p, n);
        // I12: journaling may have taken a new journal chunk out of these very
        // pages; then search again (the entries written so far stay valid).
        if (jchunks.size() != chunks) continue;
        apply_mark(p, n, true);
        // I15: first fit from a start that kept the invariant: no free region of >= n
        // pages starts below p, so none of >= m >= n pages either; allocating only
        // shrinks regions.
        if (ff_serial == wcp->serial && ff_txid == hdr()->hd_txid)
          for (uint64_t m = n; m <= kFfMax; ++m) ff_from[m] = std::max(ff_from[m], p);
        pst_header* h = hdr();
        h->hd_free_pages -= n;
        if (h->hd_free_hint == p) h->hd_free_hint = p + n;
        add_fresh(p, n);
        wrote = true;
        return p;
      }
      uint64_t count = page_count();
      grow_to(growth_target(count, trail + n - count));
    }
  }

  // ---- lock -------------------------------------------------------------------
  pthread_mutex_t* mutex() const { return reinterpret_cast<pthread_mutex_t*>(lk()->lk_mutex); }
  pthread_mutex_t* sync_mutex() const { return reinterpret_cast<pthread_mutex_t*>(wl()->wl_sync_mutex); }

  void init_mutex() {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    std::memset(lk()->lk_mutex, 0, sizeof(lk()->lk_mutex));
    int e = pthread_mutex_init(mutex(), &a);
    pthread_mutexattr_destroy(&a);
    if (e != 0) fail(Code::IO, "cannot initialise the lock of " + path + ": " + errno_text(e));
    lk()->lk_format = PST_LOCK_FORMAT;
    lk()->lk_owner_pid = 0;
    lk()->lk_watchers = 0;
    // The group-commit area (F12, F13): sync-leader mutex and log positions.
    pst_wal_lock* G = wl();
    std::memset(G, 0, sizeof *G);
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    e = pthread_mutex_init(sync_mutex(), &a);
    pthread_mutexattr_destroy(&a);
    if (e != 0) fail(Code::IO, "cannot initialise the log-sync lock of " + path + ": " + errno_text(e));
    G->wl_written = G->wl_synced = G->wl_applied = PST_WAL_FIRST_RECORD;
  }

  // Takes lk_mutex; returns true if the previous holder died (EOWNERDEAD).
  bool lock() {
    // Uncontended fast path: no clock read (a vDSO call costs ~25 ns here).
    int t = pthread_mutex_trylock(mutex());
    if (t == 0) return false;
    if (t == EOWNERDEAD) return true;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = uint64_t(ts.tv_nsec) + uint64_t(opts.lock_timeout_ms % 1000) * 1000000ull;
    ts.tv_sec += time_t(opts.lock_timeout_ms / 1000 + ns / 1000000000ull);
    ts.tv_nsec = long(ns % 1000000000ull);
    int e = pthread_mutex_timedlock(mutex(), &ts);
    if (e == 0) return false;
    if (e == EOWNERDEAD) return true;
    if (e == ETIMEDOUT)
      fail(Code::LOCKED, "timed out after " + std::to_string(opts.lock_timeout_ms) +
                             " ms waiting for the lock of " + path + " held by pid " +
                             std::to_string(__atomic_load_n(&lk()->lk_owner_pid, __ATOMIC_RELAXED)) +
                             "; retry later or raise lockTimeoutMs");
    if (e == EDEADLK)
      fail(Code::LOCKED, "this thread already holds the lock of " + path +
                             " through another handle of the same file; commit or abort that transaction first");
    if (e == ENOTRECOVERABLE)
      fail(Code::CORRUPT, "the lock of " + path + " is not recoverable (a recovery failed); close every process using it and reopen");
    fail(Code::IO, "cannot lock " + path + ": " + errno_text(e));
  }
  void unlock() {
    if (!locked) return;
    lk()->lk_owner_pid = 0;
    locked = false;
    pthread_mutex_unlock(mutex());
  }

  // F10: the first writer after a read-only first opener sets lk_mode, under lk_mutex
  // (so a later writer's begin() finds the log state complete). Nobody has written
  // since the first opener initialised the lock area (lk_mode was 0), so a dead holder
  // can only have been a reader: nothing to recover. A 'full' claimant opens (or
  // creates) the log and starts a new epoch in it, as a 'full' first opener does.
  // Returns the mode now in force.
  uint32_t claim_mode(uint32_t want) {
    bool dead = lock();
    locked = true;
    if (dead) pthread_mutex_consistent(mutex());
    try {
      uint32_t have = __atomic_load_n(&lk()->lk_mode, __ATOMIC_ACQUIRE);
      if (have == 0) {
        if (want == PST_MODE_FULL) {
          if (wal_fd < 0) wal_fd = wal_open(path, true, opts.mode);
          new_epoch_locked(wal_recover(fd, wal_fd, path));  // F5, F15: an empty epoch
        }
        __atomic_store_n(&lk()->lk_mode, want, __ATOMIC_RELEASE);
        have = want;
      }
      unlock();
      return have;
    } catch (...) {
      unlock();
      throw;
    }
  }

  void clear_txn_state() {
    redo.clear();
    lines.clear();
    fresh.clear();
    deferred.clear();
    hdr_journaled = false;
    wrote = false;
    jr_count = 0;
    in_txn = false;
  }

  void frees_at_commit() {
    for (uint64_t p : deferred) {
      uint64_t n = run_len_from(p);
      journal_header();
      mark_free(p, n);
      hdr()->hd_free_pages += n;
      if (p < hdr()->hd_free_hint) hdr()->hd_free_hint = p;
    }
    deferred.clear();
  }

  // After the commit point: frees journal chunks beyond the 4th, as its own tiny
  // journaled step (I8: the chain must stay intact while entries may need it).
  void trim_chain() {
    if (jchunks.size() <= 4) return;
    jr_chunk = hdr()->hd_jr_first;
    jr_off = kChunkHdr;
    jr_count = 0;
    lines.clear();
    fresh.clear();
    hdr_journaled = false;
    uint64_t keep_last = jchunks[3];
    uint64_t link = keep_last * kPage + offsetof(pst_journal_chunk, jc_next);
    append_entry(link, 8);
    std::vector<uint64_t> drop(jchunks.begin() + 4, jchunks.end());
    chunk_at(keep_last)->jc_next = 0;
    jchunks.resize(4);
    for (uint64_t p : drop) {
      journal_header();
      mark_free(p, PST_JOURNAL_CHUNK_PAGES);
      hdr()->hd_free_pages += PST_JOURNAL_CHUNK_PAGES;
      if (p < hdr()->hd_free_hint) hdr()->hd_free_hint = p;
    }
    __atomic_store_n(&hdr()->hd_jr_entries, 0, __ATOMIC_RELEASE);  // I8
  }

  // ---- durability 'full' ---------------------------------------------------------
  // F4: drops this process's private copies of every page the transaction may have
  // written (redo ranges, journal chunks, the header page) and of the overlay (F14), so
  // the view shows the page cache (the applied state) again. Pages never written are
  // not private: harmless.
  void release_private() {
    std::vector<std::pair<uint64_t, uint64_t>> pg;  // [first page, end page)
    pg.reserve(redo.size() + jchunks.size() + overlay.size() + 1);
    for (const auto& r : redo) pg.emplace_back(r.first / kPage, (r.first + r.second + kPage - 1) / kPage);
    for (uint64_t c : jchunks) pg.emplace_back(c, c + PST_JOURNAL_CHUNK_PAGES);
    pg.insert(pg.end(), overlay.begin(), overlay.end());
    pg.emplace_back(0, 1);
    drop_pages(pg);
    redo.clear();
    overlay.clear();
  }
  // F21: after publishing its record a committer keeps its private copies of the
  // pages it wrote (redo ranges, journal chunks, overlay) instead of dropping them:
  // they hold exactly the bytes its record gives those pages, which the store has once
  // the record is applied, so while nobody else publishes a record they equal the
  // store. The next commit then writes to pages already private (no copy-on-write
  // fault, no madvise, no refault). Page 0 is dropped at every commit as before (the
  // header is polled without the lock). `kept_lsn` is the log's written end (wl_written)
  // right after our record; begin() drops every kept page unless wl_written still
  // equals it (drop_kept_if_stale). Bounded by kKeepMaxPages (memory: a kept page is
  // anonymous memory beside the page cache's copy).
  static constexpr uint64_t kKeepMaxPages = 1024;  // 4 MiB
  std::vector<std::pair<uint64_t, uint64_t>> kept;  // pages [a, b), may overlap
  uint64_t kept_pages = 0, kept_lsn = 0;
  void release_after_publish(uint64_t lsn) {
    auto add = [&](uint64_t a, uint64_t b) {
      if (a == 0) a = 1;  // page 0 is always dropped
      if (a < b) {
        kept.emplace_back(a, b);
        kept_pages += b - a;
      }
    };
    for (const auto& r : redo) add(r.first / kPage, (r.first + r.second + kPage - 1) / kPage);
    for (uint64_t c : jchunks) add(c, c + PST_JOURNAL_CHUNK_PAGES);
    for (const auto& o : overlay) add(o.first, o.second);
    redo.clear();
    overlay.clear();
    if (kept.size() > 64 || kept_pages > kKeepMaxPages) {  // often the same pages commit after commit: merge
      std::sort(kept.begin(), kept.end());
      size_t w = 0;
      for (size_t i = 0; i < kept.size(); ++i) {
        if (w && kept[i].first <= kept[w - 1].second) kept[w - 1].second = std::max(kept[w - 1].second, kept[i].second);
        else kept[w++] = kept[i];
      }
      kept.resize(w);
      kept_pages = 0;
      for (const auto& k : kept) kept_pages += k.second - k.first;
    }
    if (kept_pages > kKeepMaxPages) drop_kept();  // too many: drop them all, as before F21
    kept_lsn = lsn;
    int r = madvise(base, kPage, MADV_DONTNEED);  // page 0 (F4)
    assert(r == 0);
    (void)r;
  }
  void drop_kept() {
    if (kept.empty()) return;
    drop_pages(kept);
    kept.clear();
    kept_pages = 0;
  }
  // F21, at begin() under lk_mutex, before anything reads the view.
  void drop_kept_if_stale(bool recovering) {
    if (!kept.empty() && (recovering || __atomic_load_n(&wl()->wl_written, __ATOMIC_ACQUIRE) != kept_lsn)) drop_kept();
  }
  void release_overlay() {
    if (overlay.empty()) return;
    std::vector<std::pair<uint64_t, uint64_t>> pg;
    pg.swap(overlay);
    drop_pages(pg);
  }
  void drop_pages(std::vector<std::pair<uint64_t, uint64_t>>& pg) {
    std::sort(pg.begin(), pg.end());
    uint64_t limit = mapped / kPage;
    for (size_t i = 0; i < pg.size();) {
      uint64_t a = pg[i].first, b = pg[i].second;
      for (++i; i < pg.size() && pg[i].first <= b; ++i) b = std::max(b, pg[i].second);
      b = std::min(b, limit);
      if (a < b) {
        int r = madvise(base + a * kPage, (b - a) * kPage, MADV_DONTNEED);
        assert(r == 0);
        (void)r;
      }
    }
  }

  // ---- group commit (F11-F16) ----------------------------------------------------
  // wl_synced only grows (F13): a leader that synced up to an LSN of an older epoch
  // must not move it back below a new epoch's start.
  void synced_max(uint64_t v) {
    uint64_t cur = __atomic_load_n(&wl()->wl_synced, __ATOMIC_ACQUIRE);
    while (cur < v &&
           !__atomic_compare_exchange_n(&wl()->wl_synced, &cur, v, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    }
  }
  // Byte offset in the current epoch below which the log is durable (under lk_mutex).
  uint64_t synced_off() const {
    uint64_t s = __atomic_load_n(&wl()->wl_synced, __ATOMIC_ACQUIRE), b = wl()->wl_base, w = lk()->lk_wal_end;
    if (s < b + PST_WAL_FIRST_RECORD) return PST_WAL_FIRST_RECORD;
    return std::min(s - b, w);
  }
  // F15: starts epoch `ep` in the lock area (under lk_mutex; every record of the old
  // epoch is synced and in the store, and the log header of `ep` is durable).
  void new_epoch_locked(uint64_t ep) {
    pst_lock* L = lk();
    pst_wal_lock* G = wl();
    uint64_t nb = G->wl_base + L->lk_wal_end;  // LSNs keep growing across epochs
    L->lk_wal_epoch = ep;
    L->lk_wal_end = PST_WAL_FIRST_RECORD;
    G->wl_base = nb;
    G->wl_applied = PST_WAL_FIRST_RECORD;
    G->wl_applied_txid = 0;
    __atomic_store_n(&G->wl_written, nb + PST_WAL_FIRST_RECORD, __ATOMIC_RELEASE);
    synced_max(nb + PST_WAL_FIRST_RECORD);
    __atomic_store_n(&L->lk_wal_flags, 0u, __ATOMIC_RELEASE);
  }

  // F5: replays the log under the lock (a dead holder, or a failed sync or store write).
  void replay_locked() {
    uint64_t ep = wal_recover(fd, wal_fd, path);  // syncs the log first: every record is durable
    new_epoch_locked(ep);
  }

  // Commit delay of the sync leader (under wl_sync_mutex). The latest sync covered
  // wl_group records; if that was a group (several processes committing), wait until
  // as many records have been published since it, or at most PERSIST_GATHER_US: the
  // committers the previous sync released are usually writing their next records
  // right now, and one sync then covers them all (without the wait, syncs alternate
  // between a lone record and the rest). A single writer (groups of 1) never waits.
  // Returns wl_records as read before the sync.
  uint32_t gather() {
    pst_wal_lock* G = wl();
    uint32_t start = G->wl_group_start, want = G->wl_group;
    uint32_t now = __atomic_load_n(&G->wl_records, __ATOMIC_SEQ_CST);
    if (want <= 1 || want > 64 || now - start >= want || gather_ns() == 0) return now;
    io().test_point("gathering");
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
      __atomic_store_n(&G->wl_gather, 1u, __ATOMIC_SEQ_CST);
      now = __atomic_load_n(&G->wl_records, __ATOMIC_SEQ_CST);
      if (now - start >= want) break;
      clock_gettime(CLOCK_MONOTONIC, &t);
      int64_t left = gather_ns() - ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec));
      if (left <= 0) break;
      struct timespec rel = {0, long(left)};
      syscall(SYS_futex, &G->wl_records, FUTEX_WAIT, now, &rel, nullptr, 0);
    }
    __atomic_store_n(&G->wl_gather, 0u, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&G->wl_records, __ATOMIC_SEQ_CST);
  }
  // PERSIST_GATHER_US (default 200; 0 = never wait), read once.
  static int64_t gather_ns() {
    static const int64_t ns = [] {
      const char* v = getenv("PERSIST_GATHER_US");
      return v && *v ? int64_t(std::min<unsigned long long>(strtoull(v, nullptr, 10), 100000)) * 1000 : 200000;
    }();
    return ns;
  }

  // F13: returns once the log is durable up to LSN `target` (0), or an errno if a log
  // sync failed after this transaction began (`fails` = wl_fails then) — whether the
  // record survives a power cut is then unknown. One process (the leader, holding
  // wl_sync_mutex) syncs for everyone: it reads wl_written first, so every record
  // published before that read shares its fdatasync; the others sleep on wl_sync_seq
  // (F19) and usually find their record covered when the leader wakes them.
  // trylock of wl_sync_mutex: 0 (held), EBUSY or an error. A leader that died holding
  // it (mid-sync or while gathering) is repaired here: its gather flag is stale, and
  // the mutex is made consistent — unlocked without that it would be unrecoverable
  // for every process. The caller then holds it and syncs again.
  int trylock_sync() {
    int e = pthread_mutex_trylock(sync_mutex());
    if (e == EOWNERDEAD) {
      __atomic_store_n(&wl()->wl_gather, 0u, __ATOMIC_SEQ_CST);
      pthread_mutex_consistent(sync_mutex());
      e = 0;
    }
    return e;
  }
  int ensure_synced(uint64_t target, uint32_t fails, bool may_gather = true) {
    pst_wal_lock* G = wl();
    for (;;) {
      // wl_synced first, then wl_fails: a sync that set wl_synced after a failure was
      // ordered after the failure's increment (both under wl_sync_mutex).
      if (__atomic_load_n(&G->wl_synced, __ATOMIC_ACQUIRE) >= target)
        return __atomic_load_n(&G->wl_fails, __ATOMIC_ACQUIRE) == fails ? 0 : EIO;
      if (__atomic_load_n(&G->wl_fails, __ATOMIC_ACQUIRE) != fails) return EIO;
      int e = trylock_sync();
      if (e == EBUSY) {
        // A leader is syncing. Sleep on wl_sync_seq, which it bumps and wakes everyone
        // with when its sync ends (all waiters at once: a mutex hands over one by one,
        // and each hand-over costs a wake-up). Bounded: a leader that died mid-sync is
        // found by the next trylock (EOWNERDEAD).
        // The sleeper sets PST_SYNC_WAITERS in the word first: a leader wakes only
        // when it finds the bit (a single writer makes no futex call at all).
        uint32_t seq = __atomic_load_n(&G->wl_sync_seq, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&G->wl_synced, __ATOMIC_ACQUIRE) >= target) continue;
        if (!(seq & PST_SYNC_WAITERS)) {
          // fails if the leader bumped the word meanwhile: look at wl_synced again
          if (!__atomic_compare_exchange_n(&G->wl_sync_seq, &seq, seq | PST_SYNC_WAITERS, false, __ATOMIC_SEQ_CST,
                                           __ATOMIC_SEQ_CST))
            continue;
          seq |= PST_SYNC_WAITERS;
        }
        e = trylock_sync();  // the leader may have finished (or died) meanwhile
        if (e == EBUSY) {
          struct timespec rel = {0, 2 * 1000 * 1000};  // 2 ms
          syscall(SYS_futex, &G->wl_sync_seq, FUTEX_WAIT, seq, &rel, nullptr, 0);
          continue;
        }
      }
      if (e != 0) return e;
      if (__atomic_load_n(&G->wl_synced, __ATOMIC_ACQUIRE) >= target ||
          __atomic_load_n(&G->wl_fails, __ATOMIC_ACQUIRE) != fails) {
        pthread_mutex_unlock(sync_mutex());
        continue;
      }
      uint32_t recs = may_gather ? gather() : __atomic_load_n(&G->wl_records, __ATOMIC_SEQ_CST);
      uint64_t upto = __atomic_load_n(&G->wl_written, __ATOMIC_ACQUIRE);  // records below: completely written
      int se = io_fsync(wal_fd, IO_WAL);
      G->wl_group = recs - G->wl_group_start;
      G->wl_group_start = recs;
      if (se) {
        // F9: never retried; everyone with a record not yet synced reports it.
        __atomic_add_fetch(&G->wl_fails, 1, __ATOMIC_SEQ_CST);
        __atomic_or_fetch(&lk()->lk_wal_flags, PST_WAL_RECOVER, __ATOMIC_SEQ_CST);
      } else {
        synced_max(upto);
      }
      // +1 in the low 31 bits, clearing PST_SYNC_WAITERS; wake if it was set (a
      // sleeper sets it by compare-and-swap, which fails once the word moved on)
      uint32_t old = __atomic_load_n(&G->wl_sync_seq, __ATOMIC_SEQ_CST);
      while (!__atomic_compare_exchange_n(&G->wl_sync_seq, &old, ((old & ~PST_SYNC_WAITERS) + 1) & ~PST_SYNC_WAITERS,
                                          false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      }
      pthread_mutex_unlock(sync_mutex());
      if (old & PST_SYNC_WAITERS) syscall(SYS_futex, &G->wl_sync_seq, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
      if (se) return se;
    }
  }

  // F12: applies the records [wl_applied, to) of the current epoch to the store file
  // (pwrite, log order; `to` <= the synced offset) and wakes watchers. Under lk_mutex,
  // with no private page in this view. Returns 0 or an errno (then PST_WAL_RECOVER is
  // set: the next begin() replays the whole log).
  int apply_locked(uint64_t to) {
    pst_lock* L = lk();
    pst_wal_lock* G = wl();
    uint64_t pos = G->wl_applied, prev = G->wl_applied_txid;
    if (pos >= to) return 0;
    uint64_t epoch = L->lk_wal_epoch, wsize = 0;
    pst_wal_record r;
    int e = 0;
    while (pos < to) {
      const std::vector<uint8_t>* buf = &wal_buf;
      if (pos == own_rec_at && epoch == own_rec_epoch && !own_rec.empty()) {
        // F11 exception: our own record, the very bytes we wrote there (no read-back)
        std::memcpy(&r, own_rec.data(), sizeof r);
        buf = &own_rec;
        if (r.wr_txid <= prev || r.wr_bytes > to - pos) {
          e = EBADMSG;
          break;
        }
      } else {
        if (wsize == 0) wsize = fd_size(wal_fd);
        if (!wal_read_record(wal_fd, epoch, pos, wsize, prev, wal_buf, r) || r.wr_bytes > to - pos) {
          e = EBADMSG;  // a published record is invalid: only a damaged log file does this
          break;
        }
      }
      e = wal_apply_record(fd, *buf, r, mapped);
      if (e) break;
      pos += r.wr_bytes;
      prev = r.wr_txid;
      G->wl_applied = pos;  // idempotent: a holder dying here leaves records to apply again
      G->wl_applied_txid = prev;
    }
    if (G->wl_applied > own_rec_at || epoch != own_rec_epoch) own_rec.clear();  // applied (by us or before)
    if (e) {
      __atomic_or_fetch(&L->lk_wal_flags, PST_WAL_RECOVER, __ATOMIC_SEQ_CST);
      poisoned = true;
      return e;
    }
    if (pos == L->lk_wal_end) __atomic_and_fetch(&L->lk_wal_flags, ~PST_WAL_REPLAY_NEEDED, __ATOMIC_SEQ_CST);
    // Watchers read hd_txid from the store (page cache): wake them once it changed.
    __atomic_store_n(&L->lk_commit_seq, uint32_t(prev), __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&L->lk_watchers, __ATOMIC_SEQ_CST) > 0)
      syscall(SYS_futex, &L->lk_commit_seq, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
    return 0;
  }

  // F14/F16: copies the records [from, to) of `epoch` into this process's private
  // view (memcpy sink), growing the mapping as a record's page count requires. With
  // to == kNone (a read-only file, no lock) it copies every valid record and stops at
  // the first invalid one; otherwise an invalid record is a damaged log (CORRUPT).
  void overlay_records(uint64_t from, uint64_t to, uint64_t epoch, uint64_t prev) {
    uint64_t wsize = fd_size(wal_fd), pos = from;
    pst_wal_record r;
    const bool strict = to != kNone;
    while (pos < to) {
      if (!wal_read_record(wal_fd, epoch, pos, wsize, prev, wal_buf, r) || (strict && r.wr_bytes > to - pos)) {
        if (!strict) break;
        fail(Code::CORRUPT, "the log " + path + "-wal is damaged: the record at byte " + std::to_string(pos) +
                                " is invalid although it was written completely; close every process and reopen");
      }
      uint64_t need = r.wr_page_count * kPage;
      if (need > mapped) {
        if (need > reserve || need > file_size()) {
          if (!strict) break;
          fail(Code::TOO_BIG, "the store " + path + " has grown to " + std::to_string(need) +
                                  " bytes, beyond maxSize or the file; open it with a larger maxSize");
        }
        map_to(need);
      }
      wal_each_range(wal_buf, r, [&](uint64_t off, const uint8_t* data, uint64_t len) {
        std::memcpy(base + off, data, len);
        overlay.emplace_back(off / kPage, (off + len + kPage - 1) / kPage);
      });
      pos += r.wr_bytes;
      prev = r.wr_txid;
    }
  }

  // F14: at begin() under lk_mutex: applies the synced records the store lacks (a
  // writer), then overlays the rest, so the transaction sees every published commit.
  // Returns BEGIN_REMAPPED if the overlay grew the mapping.
  uint32_t catch_up() {
    uint32_t gen = map_gen;
    pst_lock* L = lk();
    pst_wal_lock* G = wl();
    seen_fails = __atomic_load_n(&G->wl_fails, __ATOMIC_ACQUIRE);
    seen_written = __atomic_load_n(&G->wl_written, __ATOMIC_ACQUIRE);
    release_overlay();
    if (ro_overlay && __atomic_load_n(&L->lk_mode, __ATOMIC_ACQUIRE) != PST_MODE_FULL) return 0;
    if (full) {
      int e = apply_locked(synced_off());
      if (e)
        fail(Code::IO, "cannot write committed log records into " + path + " (" + errno_text(e) +
                           "); this handle refuses further writes (the next begin() replays the log)");
    }
    if (G->wl_applied < L->lk_wal_end) overlay_records(G->wl_applied, L->lk_wal_end, L->lk_wal_epoch, G->wl_applied_txid);
    return map_gen != gen ? uint32_t(BEGIN_REMAPPED) : 0u;
  }
  // F16: a read-only file (no lock): every valid record of the current epoch.
  uint32_t overlay_unlocked() {
    uint32_t gen = map_gen;
    release_overlay();
    overlay_records(PST_WAL_FIRST_RECORD, kNone, wal_read_epoch(wal_fd), 0);
    return map_gen != gen ? uint32_t(BEGIN_REMAPPED) : 0u;
  }

  // F15: checkpoint under lk_mutex: every record synced and applied, the store synced,
  // then a new epoch (old records dead). Returns 0 or an errno.
  int checkpoint_locked() {
    pst_lock* L = lk();
    pst_wal_lock* G = wl();
    // under lk_mutex: no record can be published meanwhile, so no gathering (F19)
    int e = ensure_synced(G->wl_base + L->lk_wal_end, __atomic_load_n(&G->wl_fails, __ATOMIC_ACQUIRE), false);
    if (!e) e = apply_locked(L->lk_wal_end);
    if (!e) e = io_fsync(fd, IO_MAIN);
    uint64_t ep = L->lk_wal_epoch + 1;
    if (!e) e = wal_write_epoch(wal_fd, ep);
    if (!e) e = io_fsync(wal_fd, IO_WAL);
    if (e) {
      poisoned = true;
      __atomic_or_fetch(&L->lk_wal_flags, PST_WAL_RECOVER, __ATOMIC_SEQ_CST);
      return e;
    }
    new_epoch_locked(ep);
    return 0;
  }

  // F20: the last handle to close a 'full' store (no other opener: the exclusive OFD
  // lock is granted) checkpoints, so the next first opener has no records to replay.
  // Best effort: a failure (or a lock timeout) leaves the log to be replayed at open.
  void checkpoint_if_last() {
    if (lock_byte0(fd, F_WRLCK, false) != 0) return;  // others have it open
    bool dead = false;
    try {
      dead = lock();
      locked = true;
      if (dead || (__atomic_load_n(&lk()->lk_wal_flags, __ATOMIC_ACQUIRE) & PST_WAL_RECOVER)) replay_locked();
      else if (lk()->lk_wal_end > PST_WAL_FIRST_RECORD) checkpoint_locked();
    } catch (...) {
    }
    if (dead) pthread_mutex_consistent(mutex());  // also after a failure: never unlock it inconsistent
    unlock();
  }

  // F12: after a commit's record is durable: apply every synced record to the store
  // (unless another process already did), checkpoint past 4 MiB. Returns 0 or an errno
  // of a failure after the commit point. A lock timeout is not a failure: the record
  // is durable and the next begin() anywhere applies it.
  int apply_after_sync(uint64_t epoch, uint64_t end) {
    if (__atomic_load_n(&lk()->lk_wal_epoch, __ATOMIC_ACQUIRE) != epoch) return 0;  // F15: all applied then
    if (__atomic_load_n(&wl()->wl_applied, __ATOMIC_ACQUIRE) >= end) return 0;
    bool dead;
    try {
      dead = lock();
    } catch (const Error&) {
      return 0;
    }
    locked = true;
    int post = 0;
    try {
      if (dead || (__atomic_load_n(&lk()->lk_wal_flags, __ATOMIC_ACQUIRE) & PST_WAL_RECOVER)) replay_locked();
      else post = apply_locked(synced_off());
      if (!post && lk()->lk_wal_end > kWalCheckpointBytes) post = checkpoint_locked();
    } catch (const Error&) {
      poisoned = true;
      post = EIO;
    }
    if (dead) pthread_mutex_consistent(mutex());
    unlock();
    return post;
  }

  // F18: 'full' mode keeps at most 4 journal chunks, as 'process' mode does after its
  // commit (trim_chain). The last change before the record is built: after it only
  // the record's write can fail, and that discards the transaction (its writes are
  // private), so the unlink and the frees go straight into the redo set, without undo
  // entries (which could need a new chunk). The dropped chunks' private pages are
  // released with the rest (they join `overlay`, the pages release_private drops).
  void trim_chain_full() {
    if (jchunks.size() <= 4) return;
    uint64_t keep_last = jchunks[3];
    chunk_at(keep_last)->jc_next = 0;
    redo.emplace_back(keep_last * kPage + offsetof(pst_journal_chunk, jc_next), 8);
    pst_header* h = hdr();  // [0, 256) is in the redo set: journal_header() ran
    for (size_t i = 4; i < jchunks.size(); ++i) {
      uint64_t c = jchunks[i];
      apply_mark(c, PST_JOURNAL_CHUNK_PAGES, false);
      uint64_t a0 = uint64_t(map_alloc_byte(c) - base);
      uint64_t a1 = uint64_t(map_alloc_byte(c + PST_JOURNAL_CHUNK_PAGES - 1) - base) + 1;
      redo.emplace_back(a0, a1 - a0);
      redo.emplace_back(a0 + kMapHalf, a1 - a0);
      h->hd_free_pages += PST_JOURNAL_CHUNK_PAGES;
      if (c < h->hd_free_hint) h->hd_free_hint = c;
      overlay.emplace_back(c, c + PST_JOURNAL_CHUNK_PAGES);
    }
    jchunks.resize(4);
  }

  // F3/F12: writes the record of a 'full' transaction and publishes it, under the lock.
  // Before publication any failure discards the transaction (its writes are private).
  // Outputs: the txid, the record's end LSN, its epoch and end offset.
  void commit_full(uint64_t* txid_out, uint64_t* lsn_out, uint64_t* epoch_out, uint64_t* end_out) {
    frees_at_commit();  // may throw (NOSPC growing the journal): transaction stays active
    journal_header();
    hdr()->hd_txid += 1;
    hdr()->hd_jr_entries = 0;  // on disk the undo journal is always empty in 'full' mode
    trim_chain_full();         // F18
    uint64_t txid = hdr()->hd_txid, limit = page_count() * kPage;
    *txid_out = txid;
    // Merge the ranges; clip to the store (fresh runs of a rolled-back growth) and
    // never include the lock area [256, 4096) of page 0.
    std::vector<std::pair<uint64_t, uint64_t>> rs;  // [start, end)
    rs.reserve(redo.size());
    for (const auto& r : redo) {
      uint64_t a = r.first, b = std::min(r.first + r.second, limit);
      if (a < kPage && b > kHdrJournalBytes) {
        if (a < kHdrJournalBytes) rs.emplace_back(a, kHdrJournalBytes);
        a = kPage;
      }
      if (a < b) rs.emplace_back(a, b);
    }
    std::sort(rs.begin(), rs.end());
    std::vector<std::pair<uint64_t, uint64_t>> merged;
    for (const auto& r : rs) {
      if (!merged.empty() && r.first <= merged.back().second) merged.back().second = std::max(merged.back().second, r.second);
      else merged.push_back(r);
    }
    uint64_t bytes = sizeof(pst_wal_record) + kWalTrailer;
    for (const auto& r : merged) bytes += sizeof(pst_wal_range) + pad8(r.second - r.first);
    std::vector<uint8_t> rec(bytes, 0);
    pst_lock* L = lk();
    pst_wal_lock* G = wl();
    pst_wal_record h{};
    h.wr_magic = PST_WAL_RECORD_MAGIC;
    h.wr_epoch = L->lk_wal_epoch;
    h.wr_txid = txid;
    h.wr_page_count = page_count();
    h.wr_bytes = bytes;
    h.wr_ranges = uint32_t(merged.size());
    std::memcpy(rec.data(), &h, sizeof h);
    uint64_t q = sizeof h;
    for (const auto& r : merged) {
      pst_wal_range g{r.first, r.second - r.first};
      std::memcpy(rec.data() + q, &g, sizeof g);
      q += sizeof g;
      std::memcpy(rec.data() + q, base + r.first, g.wg_len);
      q += pad8(g.wg_len);
    }
    uint32_t crc = crc32c(rec.data(), q);
    std::memcpy(rec.data() + q, &crc, 4);
    uint64_t at = L->lk_wal_end;
    // F13: a log sync failed since begin(): records before ours are in doubt (a replay
    // could stop before ours), so do not publish.
    int e = __atomic_load_n(&G->wl_fails, __ATOMIC_ACQUIRE) != seen_fails ? EIO : 0;
    if (!e) e = io_pwrite(wal_fd, IO_WAL, rec.data(), rec.size(), at);
    if (e) {
      if (e != ENOSPC && e != EDQUOT) poisoned = true;
      fail_commit_pre(e);
    }
    // F12: publish. From here the next lock holder sees this commit (overlay); the
    // store file gets its bytes only after the log is durable past its end.
    uint64_t end = at + rec.size();
    L->lk_wal_end = end;
    __atomic_store_n(&G->wl_written, G->wl_base + end, __ATOMIC_RELEASE);
    __atomic_or_fetch(&L->lk_wal_flags, PST_WAL_REPLAY_NEEDED, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&G->wl_records, 1u, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&G->wl_gather, __ATOMIC_SEQ_CST))  // a sync leader waits for records
      syscall(SYS_futex, &G->wl_records, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
    *lsn_out = G->wl_base + end;
    *epoch_out = L->lk_wal_epoch;
    *end_out = end;
    own_rec.swap(rec);  // applied from memory once synced (apply_locked)
    own_rec_at = at;
    own_rec_epoch = L->lk_wal_epoch;
    release_after_publish(*lsn_out);  // F21 (F4 for page 0)
  }

  // A failure before the commit point: discard the transaction, unlock, throw.
  [[noreturn]] void fail_commit_pre(int e) {
    release_private();
    drop_kept();
    load_chain_quiet();
    clear_txn_state();
    unlock();
    if (e == ENOSPC || e == EDQUOT)
      fail(Code::NOSPC, "no space left on the device to write the log of " + path +
                            "; the transaction was rolled back (free some disk space and retry)");
    fail(Code::IO, "cannot make the commit of " + path + " durable (" + errno_text(e) +
                       "); the transaction was rolled back and this handle refuses further writes: close it and open the store again");
  }
  void load_chain_quiet() {
    try {
      load_chain();
    } catch (...) {
      jchunks.clear();  // re-read at the next begin()
    }
  }

  // Rolls back a journal left by a dead holder (or found by the first opener).
  bool recover_if_needed() {
    if (__atomic_load_n(&hdr()->hd_jr_entries, __ATOMIC_ACQUIRE) == 0) return false;
    rollback_entries(0);
    return true;
  }
};

// ============================================================================

Pager::Pager() : impl_(new Impl) {
  impl_->lines.attach(&wc_);
  impl_->wcp = &wc_;  // I15
}
Pager::~Pager() {
  try {
    close();
  } catch (...) {
  }
}

namespace {

// Validates a header image read with pread (before anything is mapped). I10.
void validate_header(const std::string& path, const pst_header& h, uint64_t fsize, uint64_t reserve) {
  if (std::memcmp(h.hd_magic, PST_MAGIC_BYTES, 8) != 0)
    throw Error(Code::NOT_STORE, path + " is not a persist store (bad magic number)");
  if (h.hd_endian != PST_ENDIAN_MARK)
    throw Error(Code::VERSION, path + " was written with a different byte order; it cannot be read on this machine");
  if (h.hd_format > PST_FORMAT_VERSION)
    throw Error(Code::VERSION, path + " has format version " + std::to_string(h.hd_format) +
                                   " but this library reads up to " + std::to_string(PST_FORMAT_VERSION) +
                                   "; upgrade @persist/pager");
  if (h.hd_format == 0) throw Error(Code::CORRUPT, path + " has format version 0 (damaged header)");
  if (h.hd_page_size != PST_PAGE_SIZE)
    throw Error(Code::VERSION, path + " uses " + std::to_string(h.hd_page_size) + "-byte pages; this library needs 4096");
  if (h.hd_page_count < PST_INITIAL_PAGES)
    throw Error(Code::CORRUPT, path + " is damaged: page count " + std::to_string(h.hd_page_count) + " is too small");
  if (h.hd_page_count > fsize / PST_PAGE_SIZE)
    throw Error(Code::CORRUPT, path + " is truncated: the header says " + std::to_string(h.hd_page_count) +
                                   " pages but the file has " + std::to_string(fsize / PST_PAGE_SIZE));
  if (h.hd_page_count > reserve / PST_PAGE_SIZE)
    throw Error(Code::TOO_BIG, path + " is " + std::to_string(h.hd_page_count * PST_PAGE_SIZE) +
                                   " bytes, more than maxSize (" + std::to_string(reserve) + "); open it with a larger maxSize");
  if (h.hd_page_count % PST_MAP_SPAN != 0 && h.hd_page_count % PST_MAP_SPAN < PST_MAP_CHUNK_PAGES)
    throw Error(Code::CORRUPT, path + " is damaged: page count " + std::to_string(h.hd_page_count) +
                                   " cuts a page-map chunk");
  if (h.hd_jr_first < PST_FIRST_JOURNAL_PAGE || h.hd_jr_first + PST_JOURNAL_CHUNK_PAGES > h.hd_page_count)
    throw Error(Code::CORRUPT, path + " is damaged: journal page " + std::to_string(h.hd_jr_first) + " is out of range");
}

// Writes a complete new store to fd (header + map chunk 0 + journal chunk 0).
void write_new_store(int fd, const std::string& path) {
  std::vector<uint8_t> img(PST_INITIAL_PAGES * PST_PAGE_SIZE, 0);
  auto* h = reinterpret_cast<pst_header*>(img.data());
  std::memcpy(h->hd_magic, PST_MAGIC_BYTES, 8);
  h->hd_format = PST_FORMAT_VERSION;
  h->hd_endian = PST_ENDIAN_MARK;
  h->hd_page_size = PST_PAGE_SIZE;
  h->hd_page_count = PST_INITIAL_PAGES;
  h->hd_free_pages = 0;
  h->hd_free_hint = PST_INITIAL_PAGES;
  h->hd_jr_first = PST_FIRST_JOURNAL_PAGE;
  h->hd_created_ms = now_ms();
  h->hd_lock.lk_format = PST_LOCK_FORMAT;
  uint8_t* amap = img.data() + PST_PAGE_SIZE;
  uint8_t* smap = amap + PST_MAP_CHUNK_PAGES * PST_PAGE_SIZE / 2;
  for (uint64_t p = 0; p < PST_INITIAL_PAGES; ++p) amap[p / 8] |= uint8_t(1u << (p % 8));
  smap[0] |= 1;                                           // page 0
  smap[0] |= 2;                                           // map chunk 0 at page 1
  smap[PST_FIRST_JOURNAL_PAGE / 8] |= uint8_t(1u << (PST_FIRST_JOURNAL_PAGE % 8));  // journal chunk 0
  auto* jc = reinterpret_cast<pst_journal_chunk*>(img.data() + PST_FIRST_JOURNAL_PAGE * PST_PAGE_SIZE);
  jc->jc_magic = PST_JOURNAL_MAGIC;
  jc->jc_next = 0;
  jc->jc_pages = PST_JOURNAL_CHUNK_PAGES;
  size_t done = 0;
  while (done < img.size()) {
    ssize_t w = pwrite(fd, img.data() + done, img.size() - done, off_t(done));
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      throw Error(e == ENOSPC ? Code::NOSPC : Code::IO, "cannot write the new store " + path + ": " + errno_text(e));
    }
    done += size_t(w);
  }
  if (fsync(fd) != 0) throw Error(Code::IO, "cannot sync the new store " + path + ": " + errno_text(errno));
}

int open_errno_code(int e, Code* c) {
  switch (e) {
    case EACCES:
    case EPERM:
    case EROFS: *c = Code::PERM; break;
    case ENOENT: *c = Code::NOT_FOUND; break;
    case EISDIR: *c = Code::INVALID; break;
    case ENOSPC: *c = Code::NOSPC; break;
    default: *c = Code::IO;
  }
  return e;
}

// Creates `path` atomically: a complete store is written to a temporary file and
// linked into place, so no other process ever sees a half-written store. Returns
// false if someone else created it first.
bool create_store(const std::string& path, uint32_t mode) {
  std::string tmp = path + ".creating." + std::to_string(getpid()) + "." + std::to_string(now_ms());
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    Code c;
    int e = open_errno_code(errno, &c);
    throw Error(c, "cannot create " + path + ": " + errno_text(e));
  }
  try {
    write_new_store(fd, path);
  } catch (...) {
    ::close(fd);
    unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  int r = link(tmp.c_str(), path.c_str());
  int e = errno;
  unlink(tmp.c_str());
  if (r == 0) return true;
  if (e == EEXIST) return false;
  Code c;
  open_errno_code(e, &c);
  throw Error(c, "cannot create " + path + ": " + errno_text(e));
}

}  // namespace

std::unique_ptr<Pager> Pager::open(const std::string& path, const OpenOptions& opts) {
  if (opts.max_size < PST_INITIAL_PAGES * PST_PAGE_SIZE || opts.max_size > (uint64_t(1) << 46))
    throw Error(Code::INVALID, "maxSize must be between " + std::to_string(PST_INITIAL_PAGES * PST_PAGE_SIZE) +
                                   " bytes and 64 TiB");
  std::unique_ptr<Pager> pg(new Pager());
  Impl& m = *pg->impl_;
  m.path = path;
  m.opts = opts;
  m.reserve = (opts.max_size + PST_PAGE_SIZE - 1) / PST_PAGE_SIZE * PST_PAGE_SIZE;
  m.full = opts.durability == Durability::FULL && !opts.readonly;
  if (m.full) io().refresh();

  // 1. open the file (creating it atomically if asked)
  for (int attempt = 0;; ++attempt) {
    m.fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (m.fd >= 0) break;
    int e = errno;
    if ((e == EACCES || e == EROFS || e == EPERM) && opts.readonly) {
      m.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (m.fd >= 0) {
        m.file_ro = true;
        break;
      }
      e = errno;
    }
    if (e == ENOENT && opts.create && !opts.readonly && attempt < 3) {
      create_store(path, opts.mode);
      continue;
    }
    Code c;
    open_errno_code(e, &c);
    if (c == Code::NOT_FOUND)
      throw Error(c, path + " does not exist" + std::string(opts.readonly || !opts.create ? " (create is false or readonly is set)" : ""));
    if (c == Code::PERM)
      throw Error(c, "permission denied opening " + path + " for writing" +
                         std::string(opts.readonly ? "" : "; open it with readonly: true to read it"));
    if (c == Code::INVALID) throw Error(c, path + " is a directory, not a store file");
    throw Error(c, "cannot open " + path + ": " + errno_text(e));
  }
  struct stat st;
  if (fstat(m.fd, &st) != 0) throw Error(Code::IO, "cannot stat " + path + ": " + errno_text(errno));
  if (S_ISDIR(st.st_mode)) throw Error(Code::INVALID, path + " is a directory, not a store file");
  if (!S_ISREG(st.st_mode)) throw Error(Code::INVALID, path + " is not a regular file");
  uint64_t fsize = uint64_t(st.st_size);

  // 1b. a first opener replays the log of 'full' mode before reading anything (F5):
  // the header on disk may be ahead of the file size (growth) or partly written.
  bool replayed = false;
  uint64_t wal_epoch = 0;
  auto replay_first = [&]() {  // caller holds the exclusive OFD lock
    if (replayed) return;
    replayed = true;
    if (m.full) {
      if (m.wal_fd < 0) m.wal_fd = wal_open(path, true, opts.mode);
      wal_epoch = wal_recover(m.fd, m.wal_fd, path);
    } else if (access((path + "-wal").c_str(), F_OK) == 0) {  // last used in 'full' mode
      int w = wal_open(path, false, opts.mode);
      try {
        wal_epoch = wal_recover(m.fd, w, path);
      } catch (...) {
        ::close(w);
        throw;
      }
      ::close(w);
    }
  };
  if (!m.file_ro) {
    if (lock_byte0(m.fd, F_WRLCK, false) == 0) {
      replay_first();
      if (fstat(m.fd, &st) != 0) throw Error(Code::IO, "cannot stat " + path + ": " + errno_text(errno));
      fsize = uint64_t(st.st_size);
    }
  }

  // 2. validate the header before mapping anything (I10)
  pst_header h;
  std::memset(&h, 0, sizeof h);
  ssize_t got = pread(m.fd, &h, sizeof h, 0);
  if (got < 0) throw Error(Code::IO, "cannot read " + path + ": " + errno_text(errno));
  if (fsize < PST_PAGE_SIZE || size_t(got) < sizeof h) {
    if (got >= 8 && std::memcmp(h.hd_magic, PST_MAGIC_BYTES, 8) == 0)
      throw Error(Code::CORRUPT, path + " is truncated (" + std::to_string(fsize) + " bytes; a store has at least " +
                                     std::to_string(PST_INITIAL_PAGES * PST_PAGE_SIZE) + ")");
    throw Error(Code::NOT_STORE, path + " is not a persist store (" + std::to_string(fsize) + " bytes, no store header)");
  }
  validate_header(path, h, fsize, m.reserve);

  // 3. reserve the address range (I1)
  void* r = mmap(nullptr, m.reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED)
    throw Error(Code::TOO_BIG, "cannot reserve " + std::to_string(m.reserve) + " bytes of address space for " + path +
                                   " (" + errno_text(errno) + "); open it with a smaller maxSize");
  m.base = static_cast<uint8_t*>(r);
  // F16: a read-only opener of a store that has a log maps it privately and overlays
  // the records the store file lacks (it never writes the store or the log).
  if ((opts.readonly || m.file_ro) && access((path + "-wal").c_str(), F_OK) == 0) {
    m.wal_fd = ::open((path + "-wal").c_str(), O_RDONLY | O_CLOEXEC);
    m.ro_overlay = m.wal_fd >= 0;
  }
  if (m.priv()) {  // F2: the lock area stays shared
    void* lv = mmap(nullptr, PST_PAGE_SIZE, m.file_ro ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);
    if (lv == MAP_FAILED) throw Error(Code::IO, "cannot map the lock area of " + path + ": " + errno_text(errno));
    m.lockview = static_cast<uint8_t*>(lv);
  }

  // 4. first opener? (exclusive OFD lock on byte 0, LMDB pattern)
  if (!m.file_ro) {
    bool first = lock_byte0(m.fd, F_WRLCK, false) == 0;
    if (first) {
      // We are the only opener: the lock area may be stale (reboot, crash).
      // Re-read the header under the lock.
      replay_first();
      if (pread(m.fd, &h, sizeof h, 0) != ssize_t(sizeof h)) throw Error(Code::IO, "cannot read " + path);
      validate_header(path, h, pg->impl_->file_size(), m.reserve);
      if (m.full && h.hd_jr_entries != 0) {
        // Last used in 'process' mode and a holder died: roll its journal back through
        // a shared mapping, make that durable, then map privately (F1).
        m.full = false;
        m.map_to(h.hd_page_count * PST_PAGE_SIZE);
        m.recover_if_needed();
        if (msync(m.base, m.mapped, MS_SYNC) != 0 || fsync(m.fd) != 0)
          throw Error(Code::IO, "cannot sync " + path + " after rolling back its journal: " + errno_text(errno));
        m.full = true;
        m.mapped = 0;
      }
      m.map_to(h.hd_page_count * PST_PAGE_SIZE);
      m.init_mutex();
      m.locked = false;
      m.recover_if_needed();
      // F10: a read-only first opener leaves the mode to the first writer (claim_mode)
      m.lk()->lk_mode = opts.readonly ? 0u : m.full ? PST_MODE_FULL : PST_MODE_PROCESS;
      m.lk()->lk_wal_epoch = wal_epoch;
      m.lk()->lk_wal_end = PST_WAL_FIRST_RECORD;
      m.lk()->lk_wal_flags = 0;
      if (lock_byte0(m.fd, F_RDLCK, false) != 0) throw Error(Code::IO, "cannot downgrade the open lock on " + path + ": " + errno_text(errno));
    } else {
      while (lock_byte0(m.fd, F_RDLCK, true) != 0) {
        if (errno != EINTR) throw Error(Code::IO, "cannot lock " + path + ": " + errno_text(errno));
      }
    }
  }
  // 5. map what the header says now (an initialiser may have changed it)
  if (pread(m.fd, &h, sizeof h, 0) != ssize_t(sizeof h)) throw Error(Code::IO, "cannot read " + path);
  validate_header(path, h, m.file_size(), m.reserve);
  if (h.hd_page_count * PST_PAGE_SIZE > m.mapped) m.map_to(h.hd_page_count * PST_PAGE_SIZE);
  if (!m.file_ro && !opts.readonly) {  // mixed modes are refused (F10)
    uint32_t want = m.full ? PST_MODE_FULL : PST_MODE_PROCESS;
    uint32_t have = __atomic_load_n(&m.lk()->lk_mode, __ATOMIC_ACQUIRE);
    if (have == 0) have = m.claim_mode(want);  // F10: only read-only handles so far
    if (have != want)
      throw Error(Code::INVALID, path + " is open in durability '" + std::string(have == PST_MODE_FULL ? "full" : "process") +
                                     "' mode by another process; open it with the same durability (every opener must agree)");
    if (m.full && m.wal_fd < 0) m.wal_fd = wal_open(path, false, opts.mode);
  }
  // F17: every process sharing the lock area speaks the same lock format (a first
  // opener has just re-initialised it).
  if (!m.file_ro && m.lk()->lk_format != PST_LOCK_FORMAT)
    throw Error(Code::VERSION, path + " is open in another process that uses lock format " +
                                   std::to_string(m.lk()->lk_format) + "; this library uses lock format " +
                                   std::to_string(PST_LOCK_FORMAT) +
                                   " (a different @persist/pager version): close the store everywhere, or use the same version");
  m.last_txid = m.hdr()->hd_txid;
  m.load_chain();
  return pg;
}

void Pager::close() {
  uint8_t* b = nullptr;
  uint64_t n = 0;
  close_keep_address_range(&b, &n);
  if (b) munmap(b, n);
}

void Pager::close_keep_address_range(uint8_t** out_base, uint64_t* out_bytes) {
  Impl& m = *impl_;
  *out_base = nullptr;
  *out_bytes = 0;
  if (m.closed) return;
  wc_.invalidate();  // I14
  if (m.in_txn) {
    try {
      abort();
    } catch (...) {
      m.unlock();
    }
  }
  if (m.full && !m.poisoned) m.checkpoint_if_last();
  m.closed = true;
  if (m.base) {
    if (m.mapped > 0) {
      // Stale views must never fault: anonymous zero pages over the file range.
      void* r = mmap(m.base, m.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
      if (r == MAP_FAILED) munmap(m.base, m.mapped);  // cannot happen in practice; never keep the file mapped
    }
    if (m.reserve > m.mapped) munmap(m.base + m.mapped, m.reserve - m.mapped);
    *out_base = m.base;
    *out_bytes = m.mapped;
  }
  m.base = nullptr;
  if (m.lockview) munmap(m.lockview, kPage);
  m.lockview = nullptr;
  if (m.wal_fd >= 0) ::close(m.wal_fd);
  m.wal_fd = -1;
  if (m.fd >= 0) ::close(m.fd);
  m.fd = -1;
}

bool Pager::closed() const { return impl_->closed; }
uint8_t* Pager::base() const { return impl_->base; }
uint64_t Pager::mapped_bytes() const { return impl_->mapped; }
uint32_t Pager::map_generation() const { return impl_->map_gen; }
const pst_header* Pager::header() const { return impl_->hdr(); }
const std::string& Pager::path() const { return impl_->path; }
bool Pager::readonly() const { return impl_->opts.readonly || impl_->file_ro; }
bool Pager::in_txn() const { return impl_->in_txn; }
uint64_t Pager::own_commit_txid() const { return impl_->own_txid; }

uint32_t Pager::begin() {
  Impl& m = *impl_;
  m.need_open();
  if (m.in_txn) m.fail(Code::TXN, "a transaction is already active on this handle; commit or abort it first");
  uint32_t flags = 0;
  if (m.file_ro) {
    if (m.ro_overlay) flags |= m.overlay_unlocked();  // F16
    if (m.sync_mapping()) flags |= BEGIN_REMAPPED;
  } else {
    bool dead = m.lock();
    m.locked = true;
    try {
      // F5: a dead holder (maybe inside a checkpoint), or a failed log sync or store
      // write, may have left the log and the store apart: replay the whole log.
      // F21: first drop the pages kept since our last commit if anyone published since.
      if (m.full)
        m.drop_kept_if_stale(dead || (__atomic_load_n(&m.lk()->lk_wal_flags, __ATOMIC_ACQUIRE) & PST_WAL_RECOVER));
      if (m.full && (dead || (__atomic_load_n(&m.lk()->lk_wal_flags, __ATOMIC_ACQUIRE) & PST_WAL_RECOVER))) {
        m.replay_locked();
        flags |= BEGIN_RECOVERED;
      }
      if (m.full || m.ro_overlay) flags |= m.catch_up();  // F14, F16
      if (m.sync_mapping()) flags |= BEGIN_REMAPPED;
      if (m.recover_if_needed()) flags |= BEGIN_RECOVERED;  // H5: a non-zero count means its holder died
      if (dead) {
        flags |= BEGIN_RECOVERED;
        pthread_mutex_consistent(m.mutex());
      }
      m.lk()->lk_owner_pid = m.pid;
      // The chain is a function of the committed state (a rollback restores it), so
      // it only needs re-reading when someone committed or we recovered.
      if (m.hdr()->hd_txid != m.last_txid || (flags & BEGIN_RECOVERED) || m.jchunks.empty()) m.load_chain();
    } catch (...) {
      if (dead) pthread_mutex_consistent(m.mutex());
      m.unlock();
      throw;
    }
  }
  uint64_t txid = m.hdr()->hd_txid;
  if (txid != m.last_txid) flags |= BEGIN_CHANGED;
  m.last_txid = txid;
  m.jr_chunk = m.hdr()->hd_jr_first;
  m.jr_off = kChunkHdr;
  m.jr_count = 0;
  m.in_txn = true;
  return flags;
}

void Pager::commit() {
  Impl& m = *impl_;
  m.need_txn();
  wc_.invalidate();  // I14: the deferred frees below may release cached pages
  if (m.file_ro || !m.wrote) {
    // F14: a transaction that saw commits whose log is not durable yet returns only
    // once it is (it must not act on a commit that a power cut could still remove).
    bool wait = (m.full || (m.ro_overlay && !m.file_ro)) &&
                m.seen_written > __atomic_load_n(&m.wl()->wl_synced, __ATOMIC_ACQUIRE);
    if (m.priv()) m.release_private();  // the overlay (F4, F16)
    m.clear_txn_state();
    m.unlock();
    if (wait && m.wal_fd >= 0) {
      int e = m.ensure_synced(m.seen_written, m.seen_fails);
      if (e)
        m.fail(Code::IO, "this transaction read commits of " + m.path + " whose log sync failed (" + errno_text(e) +
                             "); they may not survive a power cut");
    }
    return;
  }
  if (m.full) {
    uint64_t txid = 0, lsn = 0, epoch = 0, end = 0;
    // throws (transaction discarded, or still active) before the record is published
    m.commit_full(&txid, &lsn, &epoch, &end);
    m.last_txid = txid;
    m.own_txid = txid;
    m.clear_txn_state();
    m.unlock();
    IoShim& s = io();
    s.test_point("unlocked");
    int e = m.ensure_synced(lsn, m.seen_fails);  // F13: the commit point is the sync covering lsn
    if (e) {
      m.poisoned = true;
      m.drop_kept();  // F21: the view shows the store again (the record is in doubt)
      m.fail(Code::IO, "transaction " + std::to_string(txid) + " of " + m.path +
                           " was written to the log, but making the log durable failed (" + errno_text(e) +
                           "): other processes already see it, and whether it survives a power cut is unknown; this "
                           "handle refuses further writes: close it and open the store again");
    }
    s.test_point("synced");
    int post = m.apply_after_sync(epoch, end);
    if (post) {
      m.drop_kept();
      m.fail(Code::IO, "transaction " + std::to_string(txid) + " of " + m.path +
                           " is committed in the log, but writing or syncing the store failed (" + errno_text(post) +
                           "); this handle refuses further writes: close it and open the store again (the log is replayed then)");
    }
    s.trace('C', IO_MAIN, txid, nullptr, 0);
    return;
  }
  try {
    m.frees_at_commit();
    m.journal_header();
    m.hdr()->hd_txid += 1;
  } catch (...) {
    // Could not finish (e.g. NOSPC growing the journal): the transaction stays
    // active and abortable.
    throw;
  }
  __atomic_store_n(&m.hdr()->hd_jr_entries, 0, __ATOMIC_RELEASE);  // commit point (I8)
  uint64_t txid = m.hdr()->hd_txid;
  try {
    m.trim_chain();
  } catch (...) {
    // Trimming is an optimisation; its own journal is rolled back by the next locker.
  }
  if (__atomic_load_n(&m.hdr()->hd_jr_entries, __ATOMIC_ACQUIRE) == 0) m.end_at_start();  // I13
  m.last_txid = txid;
  m.own_txid = txid;
  pst_lock& lk = *m.lk();
  // seq_cst store then load (pairs with the waiter's seq_cst increment of
  // lk_watchers before FUTEX_WAIT): either we see the watcher, or its FUTEX_WAIT sees
  // the new sequence number and returns at once. No lost wake-up.
  __atomic_store_n(&lk.lk_commit_seq, uint32_t(txid), __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&lk.lk_watchers, __ATOMIC_SEQ_CST) > 0)
    syscall(SYS_futex, &lk.lk_commit_seq, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
  m.clear_txn_state();
  m.unlock();
}

void Pager::abort() {
  Impl& m = *impl_;
  m.need_txn();
  if (m.ro_overlay) m.release_overlay();  // F16: outside a transaction, the page cache
  if (m.full) {  // F4: the transaction's writes are private pages: drop them
    m.release_private();
    m.drop_kept();  // F21: simpler than finding which kept pages it wrote
    m.load_chain_quiet();
    m.clear_txn_state();
    m.unlock();
    return;
  }
  if (!m.file_ro) {
    try {
      if (m.jr_count > 0) {
        m.rollback_entries(0);
        m.load_chain();  // chunks allocated by this transaction are gone again
      }
    } catch (...) {
      m.clear_txn_state();
      m.unlock();
      throw;
    }
  }
  m.clear_txn_state();
  m.unlock();
}

uint64_t Pager::savepoint() {
  Impl& m = *impl_;
  m.need_txn();
  // Writes after the savepoint must be journaled after it (I11).
  m.lines.clear();
  m.fresh.clear();
  m.hdr_journaled = false;
  return m.jr_count | (uint64_t(m.deferred.size()) << 32);
}

void Pager::rollback_to(uint64_t token) {
  Impl& m = *impl_;
  m.need_txn();
  uint64_t entries = token & 0xFFFFFFFFu, nfree = token >> 32;
  if (entries > m.jr_count || nfree > m.deferred.size())
    m.fail(Code::INVALID, "rollbackTo: the savepoint does not belong to this transaction");
  if (!m.file_ro && entries < m.jr_count) m.rollback_entries(entries);
  m.deferred.resize(size_t(nfree));
  m.lines.clear();
  m.fresh.clear();
  m.hdr_journaled = false;
  if (!m.file_ro) m.load_chain();
}

void Pager::will_write_slow(uint64_t off, uint64_t len) {
  Impl& m = *impl_;
  // A range inside one page that has a write-cache entry of this epoch, i.e. that a
  // will_write of this epoch already checked (I14: open, writable, in the store, not
  // the pager's, allocated): only its new lines remain to journal.
  uint64_t page = off / kPage;
  if (len != 0 && (off + len - 1) / kPage == page && off + len > off && wc_.live()) {
    WriteCache::Entry& e = wc_.slots[page % WriteCache::kSlots];
    if (e.key == ((wc_.epoch << WriteCache::kPageBits) | page)) {
      m.journal_lines(off, len);
      e.lines |= WriteCache::line_mask(off, off + len - 1);
      return;
    }
  }
  m.need_write();
  if (len == 0) return;
  uint64_t end = off + len;
  if (end < off || end > m.page_count() * kPage)
    m.fail(Code::INVALID, "willWrite: bytes [" + std::to_string(off) + ", " + std::to_string(end) +
                              ") are outside the store (" + std::to_string(m.page_count() * kPage) + " bytes)");
  if (m.touches_own(off / kPage, (end - 1) / kPage))
    m.fail(Code::INVALID, "willWrite: bytes [" + std::to_string(off) + ", " + std::to_string(end) +
                              ") belong to the pager itself (header, page map or journal)");
  m.journal_lines(off, len);
  m.wrote = true;
  // Remember the pages now covered (I14); ranges over many pages are not worth it.
  uint64_t ek = wc_.epoch << WriteCache::kPageBits;
  wc_.live_key = ek;
  wc_.live_serial = wc_.serial;
  uint64_t p0 = off / kPage, p1 = (end - 1) / kPage;
  if (p1 - p0 >= 16) return;
  for (uint64_t p = p0; p <= p1; ++p) {
    if (!m.is_alloc(p)) continue;
    uint64_t a = std::max(off, p * kPage), b = std::min(end, (p + 1) * kPage) - 1;
    uint64_t mask = m.page_fresh(p) ? ~uint64_t(0) : WriteCache::line_mask(a, b);
    WriteCache::Entry& e = wc_.slots[p % WriteCache::kSlots];
    if (e.key == (ek | p)) e.lines |= mask;
    else e = WriteCache::Entry{ek | p, mask};
  }
}

uint64_t Pager::alloc_pages(uint64_t n) {
  Impl& m = *impl_;
  m.need_write();
  return m.alloc_run(n);
}

void Pager::free_pages(uint64_t page) {
  Impl& m = *impl_;
  m.need_write();
  if (page >= m.page_count() || !m.is_alloc(page) || !m.is_start(page))
    m.fail(Code::INVALID, "freePages: page " + std::to_string(page) + " is not the start of an allocated run");
  if (m.touches_own(page, page))
    m.fail(Code::INVALID, "freePages: page " + std::to_string(page) + " belongs to the pager itself");
  if (std::find(m.deferred.begin(), m.deferred.end(), page) != m.deferred.end())
    m.fail(Code::INVALID, "freePages: page " + std::to_string(page) + " was already freed in this transaction (double free)");
  m.deferred.push_back(page);  // I7
  m.wrote = true;
}

bool Pager::extend_run(uint64_t page, uint64_t new_pages) {
  Impl& m = *impl_;
  m.need_write();
  uint64_t count = m.page_count();
  if (page >= count || !m.is_alloc(page) || !m.is_start(page) || m.touches_own(page, page))
    m.fail(Code::INVALID, "extendRun: page " + std::to_string(page) + " is not the start of an allocated run");
  if (std::find(m.deferred.begin(), m.deferred.end(), page) != m.deferred.end())
    m.fail(Code::INVALID, "extendRun: page " + std::to_string(page) + " was freed in this transaction");
  if (new_pages > PST_MAP_SPAN - PST_MAP_CHUNK_PAGES)
    m.fail(Code::TOO_BIG, "extendRun: " + std::to_string(new_pages) + " pages is more than one run can hold");
  uint64_t len = m.run_len_from(page);
  if (new_pages <= len) return true;
  uint64_t from = page + len, to = page + new_pages;
  // A map chunk inside the new range cannot be skipped.
  for (uint64_t k = from / PST_MAP_SPAN; k * PST_MAP_SPAN < to; ++k)
    if (k > 0 && k * PST_MAP_SPAN >= from) return false;
  for (uint64_t p = from; p < std::min(to, count); ++p)
    if (m.is_alloc(p)) return false;
  m.journal_header();
  if (to > count) m.grow_to(m.growth_target(count, to - count));
  // Mark the added pages allocated, not run starts. Journaling may take a journal
  // chunk out of free pages (I12): re-check the range afterwards.
  m.journal_map(from, to - from);
  for (uint64_t p = from; p < to; ++p)
    if (m.is_alloc(p)) return false;  // taken by the journal; the extra undo images are harmless
  for (uint64_t p = from; p < to; ++p) {
    Impl::set_bit(m.map_alloc_byte(p), p, true);
    Impl::set_bit(m.map_start_byte(p), p, false);
  }
  pst_header* h = m.hdr();
  h->hd_free_pages -= (to - from);
  if (h->hd_free_hint == from) h->hd_free_hint = to;
  m.add_fresh(from, to - from);
  m.wrote = true;
  return true;
}

bool Pager::reclaim_fresh(uint64_t page, uint64_t pages) {
  Impl& m = *impl_;
  m.need_write();
  // The fresh set holds each run alloc_run made since the latest savepoint as
  // start -> end; frees are deferred, so that run is still exactly this one.
  auto f = m.fresh.find(page);
  if (f == m.fresh.end() || f->second != page + pages || page >= m.page_count() || !m.is_start(page)) return false;
  auto it = std::find(m.deferred.rbegin(), m.deferred.rend(), page);
  if (it == m.deferred.rend()) return false;
  // Savepoint tokens count deferred entries. This run was allocated, so also freed,
  // after the latest savepoint: its entry lies beyond every token's count, and
  // erasing it leaves them valid.
  m.deferred.erase(std::next(it).base());
  return true;
}

uint64_t Pager::run_length(uint64_t page) const {
  const Impl& m = *impl_;
  m.need_open();
  if (page >= m.page_count() || !m.is_alloc(page) || !m.is_start(page)) return 0;
  return m.run_len_from(page);
}

uint64_t Pager::run_start(uint64_t page) const {
  const Impl& m = *impl_;
  m.need_open();
  if (page >= m.page_count() || !m.is_alloc(page)) return UINT64_MAX;
  uint64_t p = page;
  while (!m.is_start(p)) {
    if (p == 0 || !m.is_alloc(p - 1)) return UINT64_MAX;  // damaged map: no start
    --p;
  }
  return p;
}

bool Pager::page_allocated(uint64_t page) const {
  const Impl& m = *impl_;
  m.need_open();
  return page < m.page_count() && m.is_alloc(page);
}

uint64_t Pager::slot(unsigned i) const {
  const Impl& m = *impl_;
  m.need_open();
  if (i >= PST_SLOT_COUNT) m.fail(Code::INVALID, "slot index " + std::to_string(i) + " is out of range (0..7)");
  return m.hdr()->hd_slots[i];
}

void Pager::set_slot(unsigned i, uint64_t v) {
  Impl& m = *impl_;
  m.need_write();
  if (i >= PST_SLOT_COUNT) m.fail(Code::INVALID, "slot index " + std::to_string(i) + " is out of range (0..7)");
  m.journal_header();
  m.hdr()->hd_slots[i] = v;
  m.wrote = true;
}

bool Pager::wait_for_commit(uint64_t seen_txid, uint32_t timeout_ms) {
  Impl& m = *impl_;
  m.need_open();
  if (m.in_txn) m.fail(Code::TXN, "waitForCommit inside a transaction would wait for itself; commit or abort first");
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  auto elapsed_ms = [&]() {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return uint64_t(t.tv_sec - t0.tv_sec) * 1000 + uint64_t((t.tv_nsec - t0.tv_nsec) / 1000000);
  };
  pst_lock& lk = *m.lk();
  for (;;) {
    uint32_t seq = __atomic_load_n(&lk.lk_commit_seq, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&m.hdr()->hd_txid, __ATOMIC_ACQUIRE) != seen_txid) return true;
    uint64_t spent = elapsed_ms();
    if (spent >= timeout_ms) return false;
    uint64_t left = timeout_ms - spent;
    if (m.file_ro) {  // cannot register as a watcher in a read-only mapping: poll
      usleep(useconds_t(std::min<uint64_t>(left, 10) * 1000));
      continue;
    }
    struct timespec rel;
    rel.tv_sec = time_t(left / 1000);
    rel.tv_nsec = long(left % 1000) * 1000000;
    __atomic_add_fetch(&lk.lk_watchers, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &lk.lk_commit_seq, FUTEX_WAIT, seq, &rel, nullptr, 0);
    __atomic_sub_fetch(&lk.lk_watchers, 1, __ATOMIC_SEQ_CST);
  }
}

PagerStats Pager::stats() const {
  const Impl& m = *impl_;
  m.need_open();
  PagerStats s{};
  const pst_header* h = m.hdr();
  s.page_count = h->hd_page_count;
  s.free_pages = h->hd_free_pages;
  s.file_bytes = m.file_size();
  s.mapped_bytes = m.mapped;
  s.txid = h->hd_txid;
  s.journal_chunks = m.jchunks.size();
  s.journal_entries = h->hd_jr_entries;
  return s;
}

std::vector<std::string> Pager::check() const {
  const Impl& m = *impl_;
  m.need_open();
  std::vector<std::string> out;
  const pst_header* h = m.hdr();
  auto say = [&](const std::string& s) {
    if (out.size() < 100) out.push_back(s);
  };
  if (std::memcmp(h->hd_magic, PST_MAGIC_BYTES, 8) != 0) say("H1: bad magic");
  if (h->hd_format != PST_FORMAT_VERSION) say("H1: format " + std::to_string(h->hd_format));
  if (h->hd_endian != PST_ENDIAN_MARK) say("H1: bad endian mark");
  if (h->hd_page_size != PST_PAGE_SIZE) say("H1: page size " + std::to_string(h->hd_page_size));
  uint64_t count = h->hd_page_count;
  uint64_t fsize = m.file_size();
  if (count < PST_INITIAL_PAGES || count * kPage > fsize)
    say("H2: page count " + std::to_string(count) + " vs file size " + std::to_string(fsize));
  if (count * kPage > m.mapped) {
    say("page count " + std::to_string(count) + " exceeds this handle's mapping; begin a transaction first");
    return out;
  }
  if (!out.empty()) return out;
  // Page map: count free pages, find the first free one, check run structure.
  uint64_t free_count = 0, first_free = kNone;
  for (uint64_t p = 0; p < count; ++p) {
    bool a = m.is_alloc(p), s = m.is_start(p);
    if (!a) {
      ++free_count;
      if (first_free == kNone) first_free = p;
      if (s) say("map: page " + std::to_string(p) + " is free but marked as a run start");
    } else if (!s && (p == 0 || !m.is_alloc(p - 1))) {
      say("map: allocated page " + std::to_string(p) + " belongs to no run");
    }
  }
  if (free_count != h->hd_free_pages)
    say("H3: hd_free_pages is " + std::to_string(h->hd_free_pages) + " but " + std::to_string(free_count) + " pages are free");
  if (first_free != kNone && h->hd_free_hint > first_free)
    say("H4: hd_free_hint " + std::to_string(h->hd_free_hint) + " is above free page " + std::to_string(first_free));
  if (!m.is_alloc(0) || !m.is_start(0) || m.run_len_from(0) != 1) say("map: page 0 is not a 1-page run");
  for (uint64_t k = 0; PST_MAP_PAGE(k) < count; ++k) {
    uint64_t p = PST_MAP_PAGE(k);
    if (!m.is_alloc(p) || !m.is_start(p) || m.run_len_from(p) != PST_MAP_CHUNK_PAGES)
      say("map: map chunk " + std::to_string(k) + " at page " + std::to_string(p) + " is not a 16-page run");
  }
  // Journal chain.
  uint64_t c = h->hd_jr_first, n = 0;
  while (c != 0) {
    if (!m.chunk_ok(c, count)) {
      say("journal: bad chunk at page " + std::to_string(c));
      break;
    }
    if (!m.is_alloc(c) || !m.is_start(c) || m.run_len_from(c) != PST_JOURNAL_CHUNK_PAGES)
      say("journal: chunk at page " + std::to_string(c) + " is not an allocated 16-page run");
    if (++n > count / PST_JOURNAL_CHUNK_PAGES + 1) {
      say("journal: the chunk chain has a cycle");
      break;
    }
    c = m.chunk_at(c)->jc_next;
  }
  if (!m.in_txn && h->hd_jr_entries != 0)
    say("H5: " + std::to_string(h->hd_jr_entries) + " journal entries outside a transaction (a holder died; the next begin() rolls them back)");
  if (h->hd_jr_entries != 0) {
    try {
      size_t k = m.collect_entries(h->hd_jr_entries).size();
      if (k < h->hd_jr_entries)
        say("journal: hd_jr_entries is " + std::to_string(h->hd_jr_entries) + " but the END marker follows entry " +
            std::to_string(k) + " (damaged count; a rollback restores those " + std::to_string(k) + " entries only)");
    } catch (const Error& e) {
      say(std::string("journal: ") + e.what());
    }
  }
  return out;
}

}  // namespace persist
