// heap.h — malloc/free/realloc inside a persist store ("a malloc() and free() for a
// memory-mapped file"), built on the pager (pager.h).
//
// This header is the manual for the C++ core of @persist/heap. N-API code lives only
// in binding.cc; this core has no Node dependency and is tested natively
// (native/test/heap_native_test.cc) under AddressSanitizer + UBSan.
//
// Model
// -----
//  * A block is named by its byte offset from the start of the file (never a
//    pointer), 16-byte aligned. Offset 0 is page 0 (the store header), so 0 is never a
//    block and can serve as "null" in user structures.
//  * Small blocks (1 B … 32 KiB) live in slabs: a run of 1–32 pages holding blocks of
//    one of 40 size classes (16 B … 32 KiB, four per doubling above 128 B), a 128-byte
//    pst_slab header with a live bitmap at the slab's first page. Slabs of a class
//    with a free block form a doubly linked "partial" list headed in the meta page.
//  * Large blocks (> 32 KiB) are page runs of their own: a 64-byte pst_large header,
//    then the block. realloc grows them in place (Pager::extend_run) when the pages
//    after them are free.
//  * The meta page (its page number is pager slot 0) holds the list heads, counters
//    and PST_HEAP_ROOT_COUNT user root slots.
//  * Every metadata write is preceded by Pager::will_write, so the pager's undo journal
//    restores a consistent heap after abort() or after a crash (kill -9 at any
//    instruction) once the next begin() rolls back.
//  * The heap keeps no state of its own in memory that outlives a transaction: every
//    call reads the mapping, so any number of processes (each with its own Pager +
//    Heap) share one heap under the pager's lock, and a block allocated by one process
//    can be freed by another. (Its only caches — the meta page's address, the mapped
//    page count, the large runs freed in the current transaction, and the slab pages
//    and large runs validated in the current write epoch (heap I12, keyed by
//    Pager::write_serial(), so a commit, abort, savepoint or rollback empties them) —
//    are validated against the file or the pager before use.)
//  * A large block freed in the transaction that allocated it gives its pages back at
//    once: the next large alloc of the same page count reuses the run (the pager's
//    reclaim_fresh) instead of taking new pages. Runs that were live when the
//    transaction (or its latest savepoint) began are released only at commit.
//
// Transactions: every mutating call (init, alloc, free, realloc, set_root) must run
// inside a pager transaction (Pager::begin … commit) — Error TXN otherwise. Reading
// calls (usable_size, root, stats, check, for_each_block) should too when other
// processes may write concurrently.
//
// Writing into blocks: the heap journals its own metadata only. Before writing into a
// block, call Pager::will_write(off, len) — also for a block just returned by
// alloc(): a block freed earlier in the same transaction may be handed out again, and
// only journaled bytes come back on rollback. alloc(size, true) journals the block
// itself before zeroing it; realloc journals the bytes it copies.
//
// Errors: every failing call throws persist::Error (pager.h). Codes used here:
//   INVALID  bad offset given to free/realloc/usable_size/set_root, size 0, root index
//   TOO_BIG  size > kHeapMaxAlloc
//   CORRUPT  heap metadata found inconsistent during an operation
//   TXN      mutation outside a transaction
//   plus whatever the pager throws (NOSPC, READONLY, CLOSED, …).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pager.h"

namespace persist {

constexpr unsigned kHeapAlign = PST_HEAP_ALIGN;             // bytes; every block offset is a multiple
constexpr unsigned kHeapClassCount = PST_HEAP_CLASS_COUNT;  // small size classes
constexpr uint32_t kHeapMaxSmall = PST_HEAP_MAX_SMALL;      // largest slab block, bytes
// Largest block: a page run may not cross a map span (1 GiB) and every span starts
// with its 16-page map chunk, so a run is at most PST_MAP_SPAN - 16 pages; the block
// is that minus the 64-byte large header. 1 GiB - 64 KiB - 64 bytes.
constexpr uint64_t kHeapMaxAlloc =
    (uint64_t(PST_MAP_SPAN) - PST_MAP_CHUNK_PAGES) * PST_PAGE_SIZE - PST_LARGE_HEADER;

// Magics written into a slab / large header when the run is handed back to the pager
// (which releases the pages only at commit): a second free of the same block in the
// same transaction then reports "double free" instead of freeing twice.
constexpr uint32_t kSlabDeadMagic = 0x424C5344u;   // "DSLB"
constexpr uint32_t kLargeDeadMagic = 0x47524C44u;  // "DLRG"
constexpr uint32_t kHeapVersion = 1;               // hp_version

struct HeapClassStats {
  uint32_t block_size;   // bytes per block
  uint32_t slab_pages;   // pages per slab
  uint32_t slab_capacity;  // blocks per slab
  uint64_t slabs;        // slabs of this class
  uint64_t live;         // live blocks
  uint64_t capacity;     // slabs * slab_capacity
};

struct HeapStats {
  uint64_t bytes_live = 0;      // usable bytes of live blocks (slabs walked + hp_bytes_live for large ones)
  uint64_t blocks_live = 0;     // live blocks (slabs walked + hp_blocks_live)
  uint64_t bytes_free_in_slabs = 0;  // free block bytes inside slabs
  uint64_t slab_pages = 0;      // pages held by slabs
  uint64_t large_pages = 0;     // pages held by large blocks
  uint64_t large_blocks = 0;
  uint64_t meta_pages = 0;      // 1 once initialised
  uint64_t heap_pages = 0;      // meta + slab + large pages
  uint64_t total_pages = 0;     // pages in the store (hd_page_count)
  uint64_t free_pages = 0;      // free pages of the store (pager)
  double fragmentation = 0;     // heap_pages * 4096 / bytes_live (0 when nothing is live)
  HeapClassStats classes[PST_HEAP_CLASS_COUNT];
};

class Heap {
 public:
  explicit Heap(Pager& pager);

  // ---- size classes (compile-time table, see heap.cc) ----------------------
  static unsigned size_class(uint64_t size);  // 1 <= size <= kHeapMaxSmall
  static uint32_t class_size(unsigned c);     // bytes per block of class c
  static uint32_t class_pages(unsigned c);    // pages per slab of class c
  static uint32_t class_capacity(unsigned c); // blocks per slab of class c

  // True when the store has a heap meta page (pager slot 0 != 0).
  bool initialized() const;
  // Creates the meta page when slot 0 is 0; otherwise validates it (CORRUPT if it is
  // not a heap meta page, VERSION if it is from a newer heap). Needs a transaction.
  void init();

  // A block of at least `size` bytes (1 <= size <= kHeapMaxAlloc); its offset.
  // zero = true fills the whole usable size with 0 (journaled first).
  // INVALID for size 0, TOO_BIG above kHeapMaxAlloc.
  uint64_t alloc(uint64_t size, bool zero = false);
  // Frees a live block. INVALID with a message naming the offset and the reason:
  // "outside the file", "not the start of a live block", "double free".
  void free(uint64_t off);
  // Resizes a block; returns its (possibly new) offset. Keeps the block when
  // size <= usable size and size >= usable size / 2 (so shrinking a lot gives the
  // space back); grows a large block in place when the following pages are free;
  // otherwise allocates, copies min(old usable, size) bytes and frees the old block.
  uint64_t realloc(uint64_t off, uint64_t size);
  // Usable bytes of a live block (>= the size asked for). INVALID if not a live block.
  uint64_t usable_size(uint64_t off) const;

  // User root slots i < PST_HEAP_ROOT_COUNT (slot 0 belongs to @persist/objects when
  // that layer is used). set_root accepts 0 or the offset of a live block.
  uint64_t root(unsigned i) const;
  void set_root(unsigned i, uint64_t off);

  HeapStats stats() const;
  // Verifies invariants I1–I9 of heap.cc over every allocated run of the store.
  // Returns problems (empty = consistent). Never throws on a corrupt file and never
  // reads outside the mapping. Run it outside a transaction that freed blocks (slabs
  // freed in an open transaction are reported as pending).
  std::vector<std::string> check() const;
  // Calls fn(offset, usable_size) for every live block, in file order.
  void for_each_block(const std::function<void(uint64_t off, uint64_t usable)>& fn) const;

  Pager& pager() const { return pager_; }

 private:
  struct Located;  // a validated live block
  // The meta page; validated once, then a compare with pager slot 0 per call (slot 0
  // never changes once committed; a rollback of init() makes it differ again).
  pst_heap_meta* meta() const {
    uint64_t page = hdr_->hd_slots[0];
    if (__builtin_expect(page == meta_page_ && page != 0, 1)) return meta_;
    return meta_slow();
  }
  pst_heap_meta* meta_slow() const;
  uint64_t limit() const;  // pages this process may read: min(hd_page_count, mapped pages)
  // page < limit(), using a cached limit first: neither the page count nor the mapping
  // shrinks while the Pager is open, so a cached value is never too large.
  bool in_file(uint64_t page) const {
    if (__builtin_expect(page < limit_cache_, 1)) return true;
    limit_cache_ = limit();
    return page < limit_cache_;
  }
  Located locate(uint64_t off, const char* op) const;
  uint64_t map_run_start(uint64_t page) const;
  struct SlabRef;
  uint64_t alloc_fast(uint64_t size);
  bool free_fast(uint64_t off);
  uint64_t alloc_slow(uint64_t size, bool zero);
  void free_slow(uint64_t off);
  pst_slab* cached_slab(uint64_t start, unsigned c, uint64_t ser) const;
  void remember(uint64_t page, uint64_t start, unsigned c);
  uint64_t alloc_last(SlabRef& r, pst_slab* s, unsigned c);
  bool free_into_full(SlabRef& r, unsigned idx);
  bool free_large_ref(SlabRef& r, uint64_t off);
  uint64_t alloc_from(SlabRef& r, pst_slab* s, unsigned c);
  bool free_in(SlabRef& r, uint64_t off);
  void require_open_txn(const char* op) const;
  uint64_t reuse_freed_run(uint64_t pages);
  uint64_t alloc_small(unsigned c);
  uint64_t alloc_large(uint64_t size);
  uint64_t new_slab(unsigned c, pst_heap_meta* m);
  void free_located(const Located& b);
  void free_large(uint64_t page, pst_large* h, bool fresh);
  void journal_counters(pst_heap_meta* m);
  void require_txn(const char* op) const;
  bool pager_owned(uint64_t page, std::vector<uint64_t>* journal_pages) const;

  Pager& pager_;
  const pst_header* hdr_;              // the store header (stable for the Pager's life)
  uint8_t* base_;                      // the mapping's base (stable for the Pager's life)
  mutable uint64_t meta_page_ = 0;     // cached meta page number, validated once
  mutable pst_heap_meta* meta_ = nullptr;
  mutable uint64_t limit_cache_ = 0;   // see in_file()
  // Large runs freed in this process's recent transactions (a ring): candidates for
  // reuse_freed_run(). A hint only — the pager decides (reclaim_fresh), and entries of
  // an older fresh_epoch() are ignored.
  struct FreedRun {
    uint64_t page = 0, pages = 0, epoch = 0;
  };
  static constexpr unsigned kFreedRuns = 8;
  // Slab pages the fast paths validated in the current write epoch (heap I12): a
  // direct-mapped cache keyed by (Pager::write_serial(), page). An entry says: in this
  // epoch `page` was found to be a page of the slab of class `tag & 63` whose run
  // starts at page `tag >> 6` (page map and header checked), and the header's first
  // 64-byte line (sl_live,
  // the links and every bitmap bit a block uses) was journaled. A new epoch (commit,
  // abort, savepoint, rollback_to, close) changes the serial, which empties the cache.
  struct alignas(32) SlabRef {  // 32 bytes: two per cache line
    uint64_t serial = 0;           // Pager::write_serial() when filled; never 0 once filled
    uint64_t page = ~uint64_t(0);  // the key: a page of the slab (~0 = empty: no offset maps to it)
    uint64_t tag = 0;              // start << 6 | class (start: the run's first page), or
                                   // page << 6 | kLargeRef for a large run of this epoch
  };
  static constexpr uint64_t kLargeRef = 63;  // tag's class for a large run (classes are < 64)
  pst_slab* slab_of(const SlabRef& r) const { return reinterpret_cast<pst_slab*>(base_ + ((r.tag >> 6) << PST_PAGE_SHIFT)); }
  static uint64_t first_of(const SlabRef& r) { return ((r.tag >> 6) << PST_PAGE_SHIFT) + PST_SLAB_HEADER; }
  uint64_t counters_ser_ = 0;  // write_serial() in which the meta counter line was journaled
  static constexpr unsigned kSlabRefs = 256;
  SlabRef refs_[kSlabRefs];
  FreedRun freed_[kFreedRuns];
  unsigned freed_next_ = 0;
};

}  // namespace persist
