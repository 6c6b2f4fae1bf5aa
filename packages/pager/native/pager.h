// pager.h — the page manager: "a glorified sbrk() for a memory-mapped file".
//
// This header is the manual for the C++ core of @persist/pager. The heap
// (@persist/heap) compiles this core into its own addon and calls it directly.
// N-API code lives only in binding.cc; this core has no Node dependency and is
// tested natively (native/test) under AddressSanitizer + UBSan.
//
// The on-file layout is in include/persist_format.h (and FORMAT.md).
//
// Model
// -----
//  * One store file, mapped MAP_SHARED at the start of a large PROT_NONE reservation
//    so the base address never moves when the file grows.
//  * Every change happens inside a transaction. A transaction holds the robust,
//    process-shared mutex in the header (one writer or reader at a time, across
//    processes and threads). Before the first write to a byte range the caller
//    calls will_write(off, len): the old bytes go to the undo journal in the file.
//    commit() makes the transaction permanent by clearing hd_jr_entries (one 8-byte
//    store); abort() — or the next locker after a crash — copies the old bytes back.
//  * Pages allocated in the current transaction (since the latest savepoint) are
//    "fresh": will_write on them journals nothing. Pages freed in a transaction are
//    released only at commit, so fresh pages are never pages that were live when
//    the transaction (or savepoint) began.
//
// Errors: every failing call throws persist::Error (code + message). Codes map 1:1 to
// the JS PersistError codes through error_code_name().
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "persist_format.h"

namespace persist {

enum class Code : int {
  CORRUPT = 1,   // file content violates the format (bad offsets, bad journal, ...)
  NOT_STORE,     // not a persist store (bad magic / too short to be one)
  VERSION,       // format version newer than this library, or wrong page size/endianness
  LOCKED,        // lock wait timed out, or this thread already holds the lock via another handle
  NOSPC,         // no space left on the device (file growth failed); transaction rolled back
  CLOSED,        // the store was closed
  IO,            // other I/O error (message carries errno text)
  PERM,          // permission denied / read-only file opened for writing
  NOT_FOUND,     // file does not exist and create is false
  TXN,           // transaction misuse (no transaction, commit without begin, ...)
  INVALID,       // invalid argument reaching the core (bad offset, double free, ...)
  READONLY,      // write attempted on a store opened read-only
  UNSUPPORTED,   // feature not available (e.g. durability 'full' before it lands)
  TOO_BIG,       // request exceeds a documented limit (reservation, single run size)
};
const char* error_code_name(Code c);  // "PERSIST_CORRUPT", ...

class Error : public std::runtime_error {
 public:
  Error(Code code, const std::string& msg) : std::runtime_error(msg), code(code) {}
  Code code;
};

enum class Durability { PROCESS = 0, FULL = 1 };

struct OpenOptions {
  bool create = true;             // create the file if missing
  bool readonly = false;          // O_RDONLY + PROT_READ; no lock, no writes
  Durability durability = Durability::PROCESS;
  uint64_t max_size = 256ull << 30;  // bytes of address space reserved (max file size)
  uint32_t lock_timeout_ms = 10000;  // how long begin() waits for the lock
  uint32_t mode = 0600;           // permission bits of a new file
};

// Flags returned by begin().
enum BeginFlags : uint32_t {
  BEGIN_CHANGED = 1,    // another handle/process committed since this handle's last transaction
  BEGIN_REMAPPED = 2,   // the mapping grew (JS must refresh its views)
  BEGIN_RECOVERED = 4,  // a dead holder's transaction was rolled back by this begin()
};

struct PagerStats {
  uint64_t page_count, free_pages, file_bytes, mapped_bytes, txid;
  uint64_t journal_chunks, journal_entries;
};

class Pager {
 public:
  // Opens (or creates) a store. Throws Error: NOT_FOUND, NOT_STORE, VERSION, CORRUPT,
  // PERM, IO, NOSPC, TOO_BIG, UNSUPPORTED.
  static std::unique_ptr<Pager> open(const std::string& path, const OpenOptions& opts);
  ~Pager();  // closes
  void close();  // unmaps and closes; aborts a transaction in flight. Idempotent.
  // Like close(), but for callers that handed out views (JS ArrayBuffers) of the
  // mapping: the mapped range [*base, *base + *bytes) is replaced by anonymous
  // read/write zero pages instead of being unmapped (a stale view reads zeros and
  // never faults); the rest of the reservation is released. The caller munmaps
  // that range once no view can reach it. Returns with *base = nullptr if already closed.
  void close_keep_address_range(uint8_t** base, uint64_t* bytes);
  bool closed() const;

  // ---- memory -------------------------------------------------------------
  uint8_t* base() const;          // start of the mapping (stable for the Pager's life)
  uint64_t mapped_bytes() const;  // bytes currently mapped (= hd_page_count * 4096)
  uint32_t map_generation() const;  // bumped every time mapped_bytes() changes
  const pst_header* header() const;

  // ---- transactions -------------------------------------------------------
  // Takes the lock (waits up to lock_timeout_ms -> LOCKED), rolls back a dead
  // holder's journal (EOWNERDEAD), extends the mapping if another process grew the
  // file. Returns BeginFlags. TXN if already in a transaction on this handle.
  uint32_t begin();
  void commit();  // performs deferred page frees, bumps hd_txid (if anything was written), clears the journal, unlocks
  void abort();   // rolls back everything since begin(), unlocks
  bool in_txn() const;
  // hd_txid given by this handle's latest commit that wrote something (0 if none yet).
  // Unlike header()->hd_txid read after commit(), another process's commit cannot
  // have moved it in between.
  uint64_t own_commit_txid() const;
  // Savepoints for nested transactions: savepoint() returns a token; rollback_to()
  // undoes every write journaled after it (and page allocations/frees after it).
  uint64_t savepoint();
  void rollback_to(uint64_t token);

  // Write barrier: call before the first write to [off, off+len) in a transaction.
  // Journals the old bytes (64-byte line granularity, each line at most once per
  // transaction; nothing for fresh pages). INVALID if out of the mapping or if it
  // touches page 0's fixed fields or a map chunk (those are the pager's own).
  // TXN outside a transaction. NOSPC if the journal cannot grow.
  // Inline: a range inside one page whose lines this transaction already journaled
  // (or that is fresh) returns after one cache probe (see WriteCache below).
  __attribute__((always_inline)) void will_write(uint64_t off, uint64_t len) {
    if (__builtin_expect(wc_.covered(off, len), 1)) return;
    will_write_slow(off, len);
  }
  // True while a writable transaction is open on this handle and will_write has
  // succeeded in it since the latest savepoint: the pager is open, locked by this
  // handle, not read-only and not poisoned. Callers use it to skip their own
  // per-call "in a transaction?" checks; false says nothing (ask in_txn()).
  bool write_ready() const { return wc_.live(); }
  // Changes whenever the pager's set of fresh pages may have shrunk: at every commit,
  // abort, savepoint, rollback_to and close. A hint for caches of reclaimable runs.
  uint64_t fresh_epoch() const { return wc_.epoch; }
  // 0 unless write_ready(); otherwise this handle's current write epoch as a 64-bit
  // serial that is never reused (unlike fresh_epoch(), which wraps): it changes at
  // every commit, abort, savepoint, rollback_to and close. While it is unchanged, lines
  // journaled (or fresh) stay so and allocated pages stay allocated (I7, I14), so a
  // layer above may cache "I journaled X / validated page Y" under this serial.
  uint64_t write_serial() const { return wc_.live_serial; }

  // ---- pages --------------------------------------------------------------
  // n contiguous pages, first-fit from the lowest free page; grows the file when
  // nothing fits (posix_fallocate; NOSPC on a full disk). Returns the first page
  // number. The pages are fresh; their content is undefined unless the file just
  // grew (then zero). TOO_BIG if n exceeds a map span.
  uint64_t alloc_pages(uint64_t n);
  // Frees the run starting at `page` (deferred until commit). INVALID if `page` is
  // not the start of an allocated run (or is the pager's own).
  void free_pages(uint64_t page);
  // Grows the allocated run starting at `page` in place to `new_pages` pages if the
  // pages after it are free (or the run ends at the end of the store, which then
  // grows). Returns false (and changes nothing) if they are not. The added pages are
  // fresh. Used by the heap's realloc of large blocks.
  bool extend_run(uint64_t page, uint64_t new_pages);
  // Takes back the run starting at `page` if this transaction freed it (free_pages)
  // and allocated it since the latest savepoint (its pages are still fresh) and it is
  // `pages` long: the run is allocated again, still fresh, and can be reused at once
  // instead of at commit (I7 holds: it was not live at the savepoint). Returns false
  // and changes nothing otherwise. TXN outside a transaction. Used by the heap.
  bool reclaim_fresh(uint64_t page, uint64_t pages);
  uint64_t run_length(uint64_t page) const;  // pages in the run starting at page; 0 if not a run start
  uint64_t run_start(uint64_t page) const;   // first page of the allocated run containing page; UINT64_MAX if free
  bool page_allocated(uint64_t page) const;

  // ---- slots (u64 values for the layers above; slot 0 belongs to the heap) --
  uint64_t slot(unsigned i) const;
  void set_slot(unsigned i, uint64_t v);  // journaled; needs a transaction

  // ---- change notification --------------------------------------------------
  // Blocks the calling thread until hd_txid differs from seen_txid (another process
  // or handle committed) or timeout_ms passes. Returns true on a change. Uses a futex
  // on lk_commit_seq (committers wake only when lk_watchers > 0); a read-only mapping
  // polls every 10 ms instead. TXN inside a transaction (the committer needs the lock).
  bool wait_for_commit(uint64_t seen_txid, uint32_t timeout_ms);

  // ---- inspection ---------------------------------------------------------
  PagerStats stats() const;
  // Verifies header (H1–H5), page map, journal chain; returns problems ("" never).
  // Never throws on a corrupt file and never reads outside the mapping.
  std::vector<std::string> check() const;

  const std::string& path() const;
  bool readonly() const;

  Pager(const Pager&) = delete;
  Pager& operator=(const Pager&) = delete;

  // The write barrier's fast path: a direct-mapped cache of pages whose 64-byte lines
  // were journaled (or are fresh) in the current transaction since its latest
  // savepoint — a subset of the pager's line set and fresh set (pager.cc, I11, I14).
  // Entry key = epoch << 34 | page (a store has < 2^34 pages); `lines` bit i =
  // line i of that page (4096 / 64 = 64 lines). Every clear of the line set bumps the
  // epoch (commit, abort, savepoint, rollback_to, close), which empties the cache.
  struct WriteCache {
    static constexpr unsigned kSlots = 512;
    static constexpr unsigned kPageBits = 34;
    struct Entry {
      uint64_t key = 0;    // 0 = empty (epochs start at 1)
      uint64_t lines = 0;  // bit i: line i of the page is covered
    };
    uint64_t epoch = 1;      // < 2^30; wraps to 1 after clearing every entry
    uint64_t live_key = 0;   // == epoch << kPageBits while write_ready()
    uint64_t serial = 1;       // bumped by every invalidate(); never wraps (2^64)
    uint64_t live_serial = 0;  // == serial while write_ready(), else 0 (write_serial())
    Entry slots[kSlots];

    static uint64_t line_mask(uint64_t off, uint64_t last) {  // lines of [off, last] in one page
      unsigned l0 = unsigned(off >> 6) & 63, l1 = unsigned(last >> 6) & 63;
      return (~uint64_t(0) >> (63 - l1)) & (~uint64_t(0) << l0);
    }
    bool covered(uint64_t off, uint64_t len) const {
      uint64_t last = off + len - 1;
      uint64_t page = off >> PST_PAGE_SHIFT;
      if (len == 0 || (last >> PST_PAGE_SHIFT) != page || last < off) return false;
      const Entry& e = slots[page % kSlots];
      uint64_t want = line_mask(off, last);
      return e.key == ((epoch << kPageBits) | page) && (e.lines & want) == want;
    }
    bool live() const { return live_key == (epoch << kPageBits); }
    void invalidate() {
      if (++epoch >= (uint64_t(1) << (64 - kPageBits))) {
        for (Entry& e : slots) e = Entry{};
        epoch = 1;
      }
      live_key = 0;
      ++serial;
      live_serial = 0;
    }
  };

 private:
  Pager();
  void will_write_slow(uint64_t off, uint64_t len);
  struct Impl;
  WriteCache wc_;
  std::unique_ptr<Impl> impl_;
};

// Test hook (native tests only): when set, called after each journal entry is undone
// during a rollback or recovery, with the number of entries still to undo. The
// native tests use it to kill a process in the middle of a recovery (idempotency).
namespace testing {
extern void (*rollback_hook)(uint64_t remaining);
}

}  // namespace persist
