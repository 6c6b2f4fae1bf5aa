// heap.cc — the heap core: size classes, slabs, large blocks, check().
//
// Invariants (check() verifies I2–I9; the code cites them where it keeps them):
//  I1 Every write to heap metadata (meta page, slab header, large header) is preceded
//     in the same transaction by Pager::will_write over those bytes, so rollback
//     (abort, or the next begin() after a crash) restores a consistent heap.
//  I2 Every allocated run of the store that the pager does not own (page 0, map
//     chunks, journal chunks) is exactly one of: the meta page (pager slot 0, one
//     page), a slab (pst_slab header, sl_magic = PST_SLAB_MAGIC), a large block
//     (pst_large header, lg_magic = PST_LARGE_MAGIC), or — only inside the
//     transaction that freed it — a dead slab / dead large run (kSlabDeadMagic,
//     kLargeDeadMagic) waiting for the pager to release it at commit.
//  I3 A slab of class c has sl_class = c and sl_block_size, sl_pages, sl_capacity
//     equal to kClasses[c]; its run is sl_pages long; bitmap bits >= sl_capacity are
//     clear; sl_live = popcount(sl_bitmap) <= sl_capacity.
//  I4 Block i of a slab at page p is at byte p*4096 + PST_SLAB_HEADER + i*size; a
//     large block at page p is at p*4096 + PST_LARGE_HEADER. Both are 16-aligned and
//     blocks never overlap (a slab's blocks fit its run: static_assert on the table).
//  I5 hp_partial[c] heads a doubly linked list (sl_next / sl_prev, page numbers,
//     0 = none; the head's sl_prev = 0) holding exactly the class-c slabs with
//     sl_live < sl_capacity. A full slab is on no list.
//  I6 A slab with sl_live = 0 exists only as the sole member of its class's partial
//     list; any other slab that becomes empty is given back to the pager at once.
//  I7 hp_bytes_live / hp_blocks_live = usable bytes / number of live LARGE blocks
//     (small-block totals are the slabs' sl_live counts, so a small alloc or free
//     writes one journal line, the slab header's); hp_slab_pages / hp_large_pages =
//     pages of live slabs / large runs.
//  I8 lg_pages = the run's length and lg_size = lg_pages*4096 - PST_LARGE_HEADER.
//  I9 Every page of the store is pager-owned, heap (meta, slab, large, dead) or free.
//  I10 A dead large run is handed out again before commit only when the pager confirms
//     (reclaim_fresh) that this transaction allocated it since its latest savepoint:
//     its pages are fresh, so like any new run its old bytes never need restoring
//     (alloc(zero) and realloc rely on large blocks being fresh), and a rollback undoes
//     its allocation. A run that was live at the savepoint stays dead until commit.
//  I11 Fast paths skip the pager's own checks only while Pager::write_ready() holds
//     (open, writable transaction); otherwise require_open_txn() runs them first. They
//     read the page map directly (persist_format.h) for pages below hd_page_count and
//     the mapped size, as Pager::run_start() does.
//  I12 A SlabRef (heap.h) filled under Pager::write_serial() S is trusted only while
//     write_serial() is still S: the pager guarantees that until then the transaction
//     is open and writable, lines it journaled stay journaled (so the slab header's
//     first line needs no new will_write) and allocated pages stay allocated (frees
//     are deferred to commit, reclaim_fresh takes back dead LARGE runs only), so the
//     page is still part of the same slab run, whose class fields only new_slab()
//     writes (on fresh pages). What can change within the epoch is re-read on every
//     use: sl_magic (the slab may have been freed, by this or another Heap on the same
//     Pager), sl_live, the bitmap and the links; hp_partial[c] is read from the meta
//     page and must name the cached page. Index arithmetic uses the cached class
//     (kClasses), never header fields, so a damaged header cannot make a fast path
//     write outside the header's first line.
//
// The heap holds no state in memory besides the pager reference, the mapping's base
// address (stable for the Pager's life) and caches validated before use (heap.h):
// every call reads the file, so several processes can share a heap under the pager's
// lock.
#include "heap.h"

#include <array>
#include <cassert>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

namespace persist {

// ---- layout checks (FORMAT.md, "Heap") ------------------------------------
static_assert(offsetof(pst_heap_meta, hp_magic) == 0, "hp_magic");
static_assert(offsetof(pst_heap_meta, hp_version) == 8, "hp_version");
static_assert(offsetof(pst_heap_meta, hp_class_count) == 12, "hp_class_count");
static_assert(offsetof(pst_heap_meta, hp_roots) == 16, "hp_roots");
static_assert(offsetof(pst_heap_meta, hp_partial) == 80, "hp_partial");
static_assert(offsetof(pst_heap_meta, hp_bytes_live) == 400, "hp_bytes_live");
static_assert(offsetof(pst_heap_meta, hp_blocks_live) == 408, "hp_blocks_live");
static_assert(offsetof(pst_heap_meta, hp_slab_pages) == 416, "hp_slab_pages");
static_assert(offsetof(pst_heap_meta, hp_large_pages) == 424, "hp_large_pages");
static_assert(sizeof(pst_heap_meta) == 432 && sizeof(pst_heap_meta) <= PST_PAGE_SIZE, "meta fits a page");
// The four counters share one 64-byte journal line (400..431 within 384..447).
static_assert(offsetof(pst_heap_meta, hp_bytes_live) / 64 == (offsetof(pst_heap_meta, hp_large_pages) + 7) / 64,
              "meta counters share a journal line");
static_assert(offsetof(pst_slab, sl_magic) == 0, "sl_magic");
static_assert(offsetof(pst_slab, sl_class) == 4, "sl_class");
static_assert(offsetof(pst_slab, sl_pages) == 6, "sl_pages");
static_assert(offsetof(pst_slab, sl_block_size) == 8, "sl_block_size");
static_assert(offsetof(pst_slab, sl_capacity) == 12, "sl_capacity");
static_assert(offsetof(pst_slab, sl_live) == 14, "sl_live");
static_assert(offsetof(pst_slab, sl_next) == 16, "sl_next");
static_assert(offsetof(pst_slab, sl_prev) == 24, "sl_prev");
static_assert(offsetof(pst_slab, sl_bitmap) == 32, "sl_bitmap");
static_assert(offsetof(pst_slab, sl_reserved) == 96, "sl_reserved");
static_assert(sizeof(pst_slab) == PST_SLAB_HEADER && PST_SLAB_HEADER % PST_HEAP_ALIGN == 0, "slab header");
static_assert(offsetof(pst_large, lg_magic) == 0, "lg_magic");
static_assert(offsetof(pst_large, lg_flags) == 4, "lg_flags");
static_assert(offsetof(pst_large, lg_pages) == 8, "lg_pages");
static_assert(offsetof(pst_large, lg_size) == 16, "lg_size");
static_assert(sizeof(pst_large) == PST_LARGE_HEADER && PST_LARGE_HEADER % PST_HEAP_ALIGN == 0, "large header");
static_assert(PST_HEAP_ROOT_COUNT == 8 && PST_HEAP_CLASS_COUNT == 40, "meta layout assumes 8 roots, 40 classes");

// ---- size classes ------------------------------------------------------------
// 16..128 in steps of 16 (8 classes), then four classes per doubling up to 32 KiB:
// (2^k, 2^(k+1)] in steps of 2^(k-2) for k = 7..14 (32 classes). Rounding a request up
// to its class wastes at most 1/5 of the block (e.g. 129 -> 160).
namespace {

struct ClassInfo {
  uint32_t size;      // bytes per block
  uint32_t pages;     // pages per slab
  uint32_t capacity;  // blocks per slab
  uint64_t recip;     // ceil(2^32 / size): x / size == (x * recip) >> 32 for every byte offset x in a slab
};

constexpr uint32_t kPage = PST_PAGE_SIZE;
constexpr uint32_t kMaxSlabPages = 32;  // slab span limit (pages)

constexpr uint32_t class_size_of(unsigned c) {
  if (c < 8) return 16u * (c + 1);
  unsigned k = 7 + (c - 8) / 4;  // (2^k, 2^(k+1)]
  unsigned j = (c - 8) % 4 + 1;  // 1..4 steps of 2^(k-2)
  return (1u << k) + j * (1u << (k - 2));
}

constexpr uint32_t slab_capacity_of(uint32_t size, uint32_t pages) {
  uint32_t cap = (pages * kPage - PST_SLAB_HEADER) / size;
  return cap > PST_SLAB_MAX_BLOCKS ? PST_SLAB_MAX_BLOCKS : cap;
}
// Bytes of a slab that can never hold a block: header excluded, tail after the last block.
constexpr uint32_t slab_waste_of(uint32_t size, uint32_t pages) {
  return pages * kPage - PST_SLAB_HEADER - slab_capacity_of(size, pages) * size;
}

// Span per class: the fewest pages whose unusable tail is <= 1/16 of the slab (6.25%);
// if no span up to kMaxSlabPages achieves that, the fewest with <= 1/8 (12.5%, the
// documented bound). Small spans keep partly used slabs cheap; the bound keeps the
// per-slab waste low.
constexpr uint32_t slab_pages_of(uint32_t size) {
  for (uint32_t div : {16u, 8u}) {
    for (uint32_t p = 1; p <= kMaxSlabPages; p++) {
      uint32_t cap = slab_capacity_of(size, p);
      if (cap >= 1 && uint64_t(slab_waste_of(size, p)) * div <= uint64_t(p) * kPage) return p;
    }
  }
  return 0;  // no span fits: rejected by the static_assert below
}

constexpr std::array<ClassInfo, PST_HEAP_CLASS_COUNT> make_classes() {
  std::array<ClassInfo, PST_HEAP_CLASS_COUNT> t{};
  for (unsigned c = 0; c < PST_HEAP_CLASS_COUNT; c++) {
    uint32_t s = class_size_of(c);
    uint32_t p = slab_pages_of(s);
    t[c] = ClassInfo{s, p, p ? slab_capacity_of(s, p) : 0, ((uint64_t(1) << 32) + s - 1) / s};
  }
  return t;
}
constexpr std::array<ClassInfo, PST_HEAP_CLASS_COUNT> kClasses = make_classes();

constexpr bool classes_valid() {
  for (unsigned c = 0; c < PST_HEAP_CLASS_COUNT; c++) {
    const ClassInfo& k = kClasses[c];
    if (k.size % PST_HEAP_ALIGN != 0) return false;                        // I4 alignment
    if (c > 0 && k.size <= kClasses[c - 1].size) return false;              // increasing
    if (k.pages < 1 || k.pages > kMaxSlabPages) return false;               // span table filled
    if (k.capacity < 1 || k.capacity > PST_SLAB_MAX_BLOCKS) return false;   // bitmap holds it
    if (PST_SLAB_HEADER + uint64_t(k.capacity) * k.size > uint64_t(k.pages) * kPage) return false;  // I4 fits
    if (uint64_t(slab_waste_of(k.size, k.pages)) * 8 > uint64_t(k.pages) * kPage) return false;  // waste <= 12.5%
    if (k.pages > 0xFFFF) return false;                                    // sl_pages is u16
  }
  return true;
}
static_assert(classes_valid(), "size-class table: aligned, increasing, fits the bitmap, waste <= 12.5%");

// locate() divides a byte offset inside a slab by the block size with a multiply.
constexpr bool reciprocals_exact() {
  for (unsigned c = 0; c < PST_HEAP_CLASS_COUNT; c++) {
    const ClassInfo& k = kClasses[c];
    uint64_t span = uint64_t(k.pages) * kPage;
    // worst case is just below a multiple of the size; check every block boundary
    for (uint64_t q = 0; q * k.size < span; q++) {
      uint64_t lo = q * k.size, hi = lo + k.size - 1;
      if (((lo * k.recip) >> 32) != q || ((hi * k.recip) >> 32) != q) return false;
    }
  }
  return true;
}
static_assert(reciprocals_exact(), "reciprocal division is exact within a slab");

// Every bitmap bit a block uses lies in bitmap words 0-3, i.e. in the slab header's
// first 64-byte line with sl_live and the links: an alloc or free that changes no list
// writes (and journals) that one line (I1, I12).
constexpr bool bitmaps_in_first_line() {
  for (const ClassInfo& k : kClasses)
    if (offsetof(pst_slab, sl_bitmap) + (k.capacity + 63) / 64 * 8 > 64) return false;
  return offsetof(pst_slab, sl_live) < 64 && offsetof(pst_slab, sl_prev) + 8 <= 64;
}
static_assert(PST_HEAP_CLASS_COUNT < 63, "SlabRef tags keep the class in 6 bits, 63 = kLargeRef");
static_assert(bitmaps_in_first_line(), "a slab's live bits, count and links share its header's first line");
static_assert(kClasses[0].size == PST_HEAP_ALIGN, "smallest class is 16 bytes");
static_assert(kClasses[PST_HEAP_CLASS_COUNT - 1].size == PST_HEAP_MAX_SMALL, "largest class is 32 KiB");

// size -> class for every size 1..32768, indexed by (size + 15) / 16.
constexpr std::array<uint8_t, PST_HEAP_MAX_SMALL / 16 + 1> make_lookup() {
  std::array<uint8_t, PST_HEAP_MAX_SMALL / 16 + 1> t{};
  unsigned c = 0;
  for (unsigned i = 1; i < t.size(); i++) {
    while (kClasses[c].size < i * 16) c++;
    t[i] = uint8_t(c);
  }
  return t;
}
constexpr std::array<uint8_t, PST_HEAP_MAX_SMALL / 16 + 1> kLookup = make_lookup();

constexpr bool lookup_valid() {
  for (uint32_t s = 1; s <= PST_HEAP_MAX_SMALL; s++) {
    unsigned c = kLookup[(s + 15) / 16];
    if (kClasses[c].size < s) return false;                // fits
    if (c > 0 && kClasses[c - 1].size >= s) return false;  // smallest that fits
  }
  return true;
}
static_assert(lookup_valid(), "size -> class lookup picks the smallest class that fits");

constexpr uint64_t kPageMask = PST_PAGE_SIZE - 1;

uint64_t large_pages_for(uint64_t size) { return (size + PST_LARGE_HEADER + kPageMask) >> PST_PAGE_SHIFT; }

std::string hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

bool is_map_chunk_page(uint64_t page) {
  uint64_t k = page / PST_MAP_SPAN;
  uint64_t first = PST_MAP_PAGE(k);
  return page >= first && page < first + PST_MAP_CHUNK_PAGES;
}

unsigned popcount_bitmap(const pst_slab* s) {
  unsigned n = 0;
  for (uint64_t w : s->sl_bitmap) n += unsigned(__builtin_popcountll(w));
  return n;
}

}  // namespace

unsigned Heap::size_class(uint64_t size) {
  assert(size >= 1 && size <= PST_HEAP_MAX_SMALL);
  return kLookup[(size + 15) >> 4];
}
uint32_t Heap::class_size(unsigned c) { return kClasses[c].size; }
uint32_t Heap::class_pages(unsigned c) { return kClasses[c].pages; }
uint32_t Heap::class_capacity(unsigned c) { return kClasses[c].capacity; }

namespace {
std::vector<uint64_t> journal_chunks(const Pager& p, uint64_t limit);
}  // namespace

// ---- located blocks --------------------------------------------------------

struct Heap::Located {
  uint64_t off;       // block offset
  uint64_t page;      // first page of its run
  pst_slab* slab;     // non-null for a slab block
  pst_large* large;   // non-null for a large block
  unsigned index;     // block index in the slab
  uint64_t usable;    // usable bytes
};

Heap::Heap(Pager& pager) : pager_(pager), hdr_(pager.header()), base_(pager.base()) {}

void Heap::require_txn(const char* op) const {
  if (!pager_.in_txn())
    throw Error(Code::TXN, std::string("heap ") + op + " needs a transaction: call it between begin() and commit()");
}

// The checks the fast paths skip while write_ready() holds (I11): before reading the
// mapping, the store must be open; a mutation needs a transaction.
void Heap::require_open_txn(const char* op) const {
  if (pager_.closed()) throw Error(Code::CLOSED, std::string("heap ") + op + ": the store is closed; open it again to use it");
  require_txn(op);
}

// First page of the allocated run containing `page`, read from the page map like
// Pager::run_start(); UINT64_MAX if the page is free, beyond hd_page_count, or the map
// has no start for it. Caller: in_file(page) and the pager is open (I11).
inline uint64_t Heap::map_run_start(uint64_t page) const {
  if (page >= __atomic_load_n(&hdr_->hd_page_count, __ATOMIC_ACQUIRE)) return UINT64_MAX;
  constexpr uint64_t kHalf = uint64_t(PST_MAP_CHUNK_PAGES) * PST_PAGE_SIZE / 2;  // bytes per bitmap
  const uint8_t* alloc = base_ + (PST_MAP_PAGE(page / PST_MAP_SPAN) << PST_PAGE_SHIFT);
  const uint8_t* start = alloc + kHalf;
  uint64_t b = page % PST_MAP_SPAN;  // runs never cross a span: its first page is the map chunk's start
  if (!(alloc[b >> 3] >> (b & 7) & 1)) return UINT64_MAX;
  while (!(start[b >> 3] >> (b & 7) & 1)) {
    if (b == 0) return UINT64_MAX;
    --b;
    if (!(alloc[b >> 3] >> (b & 7) & 1)) return UINT64_MAX;  // damaged map: no start
  }
  return page - page % PST_MAP_SPAN + b;
}

// Pages this process may read: the pager's page count, capped by what is mapped here.
static uint64_t page_limit(const Pager& p) {
  uint64_t pc = p.header()->hd_page_count;  // (walks only; hot paths use Heap::limit())
  uint64_t mapped = p.mapped_bytes() >> PST_PAGE_SHIFT;
  return pc < mapped ? pc : mapped;
}

uint64_t Heap::limit() const {
  uint64_t pc = hdr_->hd_page_count;
  uint64_t mapped = pager_.mapped_bytes() >> PST_PAGE_SHIFT;
  return pc < mapped ? pc : mapped;
}

bool Heap::initialized() const { return hdr_->hd_slots[0] != 0; }

pst_heap_meta* Heap::meta_slow() const {
  uint64_t page = hdr_->hd_slots[0];
  if (page == 0) throw Error(Code::INVALID, "the store has no heap yet: call Heap::init() in a transaction (openHeap does)");
  if (!in_file(page))
    throw Error(Code::CORRUPT, "heap meta page " + std::to_string(page) + " (pager slot 0) is outside the file");
  auto* m = reinterpret_cast<pst_heap_meta*>(base_ + (page << PST_PAGE_SHIFT));
  if (m->hp_magic != PST_HEAP_META_MAGIC)
    throw Error(Code::CORRUPT, "page " + std::to_string(page) + " named by pager slot 0 is not a heap meta page (bad magic)");
  meta_page_ = page;
  meta_ = m;
  return m;
}

void Heap::init() {
  require_txn("init");
  if (pager_.slot(0) != 0) {
    pst_heap_meta* m = meta();
    if (m->hp_version > kHeapVersion)
      throw Error(Code::VERSION, "heap version " + std::to_string(m->hp_version) + " is newer than this library (" +
                                     std::to_string(kHeapVersion) + "): upgrade @persist/heap");
    if (m->hp_version != kHeapVersion || m->hp_class_count != PST_HEAP_CLASS_COUNT)
      throw Error(Code::CORRUPT, "heap meta page has version " + std::to_string(m->hp_version) + " and " +
                                     std::to_string(m->hp_class_count) + " classes; expected " +
                                     std::to_string(kHeapVersion) + " and " + std::to_string(PST_HEAP_CLASS_COUNT));
    return;
  }
  uint64_t page = pager_.alloc_pages(1);
  auto* m = reinterpret_cast<pst_heap_meta*>(base_ + (page << PST_PAGE_SHIFT));
  pager_.will_write(page << PST_PAGE_SHIFT, PST_PAGE_SIZE);  // I1 (fresh page: journals nothing)
  std::memset(static_cast<void*>(m), 0, PST_PAGE_SIZE);  // the page after the struct is zero too (FORMAT.md)
  m->hp_magic = PST_HEAP_META_MAGIC;
  m->hp_version = kHeapVersion;
  m->hp_class_count = PST_HEAP_CLASS_COUNT;
  pager_.set_slot(0, page);  // journaled by the pager
}

// ---- alloc -----------------------------------------------------------------

// Fast path of alloc() for the common case: a small block from the head of its class's
// partial list, in a writable transaction (I11), when the slab stays partial.
// Anything else (no partial slab, the slab fills up, a damaged header: the general
// path reports it) returns 0 and alloc() takes the general path. Keeps I1 and I3 as
// alloc_small() does.
__attribute__((noinline)) uint64_t Heap::alloc_fast(uint64_t size) {
  uint64_t ser = pager_.write_serial();  // 0 unless write_ready() (I11)
  if (ser == 0 || size - 1 >= PST_HEAP_MAX_SMALL) return 0;
  unsigned c = kLookup[(size + 15) >> 4];
  const ClassInfo& k = kClasses[c];
  uint64_t page = meta()->hp_partial[c];
  if (page == 0 || page >= limit_cache_) return 0;
  auto* s = reinterpret_cast<pst_slab*>(base_ + (page << PST_PAGE_SHIFT));
  if (s->sl_magic != PST_SLAB_MAGIC || s->sl_class != c || s->sl_capacity != k.capacity ||
      s->sl_block_size != k.size || s->sl_pages != k.pages || unsigned(s->sl_live) + 1 >= k.capacity)
    return 0;
  pager_.will_write(page << PST_PAGE_SHIFT, 64);  // I1: the header line with every bit a block uses (I3)
  SlabRef& r = refs_[page % kSlabRefs];
  r = SlabRef{ser, page, page << 6 | c};  // I12
  return alloc_from(r, s, c);
}

// Journals the meta page's counter line (hp_bytes_live .. hp_large_pages, one 64-byte
// line: static_assert above) before a counter changes (I1, I7); once per write epoch,
// as the pager keeps a journaled line journaled until the epoch ends (I12).
inline void Heap::journal_counters(pst_heap_meta* m) {
  uint64_t ser = pager_.write_serial();
  if (ser != 0 && ser == counters_ser_) return;
  pager_.will_write(uint64_t(reinterpret_cast<uint8_t*>(&m->hp_bytes_live) - base_), 32);
  counters_ser_ = pager_.write_serial();
}

// The header of the slab starting at `start` if a SlabRef says it is a class-c slab
// validated in epoch `ser` (I12) and it is still live; nullptr otherwise.
inline pst_slab* Heap::cached_slab(uint64_t start, unsigned c, uint64_t ser) const {
  const SlabRef& r = refs_[start % kSlabRefs];
  if (r.serial != ser || r.page != start || r.tag != (start << 6 | c)) return nullptr;
  pst_slab* s = slab_of(r);
  return s->sl_magic == PST_SLAB_MAGIC ? s : nullptr;
}

// Remembers a slab page validated by a general path in this epoch, after the slab
// header's first line was journaled (I12). The caller checked the header against the
// class table (magic, class, block size, pages, capacity) and that `page` lies in the
// slab's run.
void Heap::remember(uint64_t page, uint64_t start, unsigned c) {
  uint64_t ser = pager_.write_serial();
  if (ser == 0) return;
  refs_[page % kSlabRefs] =
      SlabRef{ser, page, start << 6 | c};
}

// alloc()'s hot path when the block taken is the head slab's last free one: the slab
// leaves its class's partial list (I5), as in alloc_small(). Needs the next slab on the
// list validated in this epoch (I12); returns 0 and changes nothing otherwise.
__attribute__((noinline)) uint64_t Heap::alloc_last(SlabRef& r, pst_slab* s, unsigned c) {
  uint64_t page = r.tag >> 6;
  uint64_t next = s->sl_next;
  pst_slab* ns = nullptr;
  if (next != 0) {
    if (next == page || !(ns = cached_slab(next, c, r.serial))) return 0;
  }
  pst_heap_meta* m = meta();
  pager_.will_write(uint64_t(reinterpret_cast<uint8_t*>(&m->hp_partial[c]) - base_), 8);  // I1 (ns, s: I12)
  uint64_t off = alloc_from(r, s, c);
  if (off == 0) return 0;
  m->hp_partial[c] = next;  // I5: a full slab is on no list
  if (ns) ns->sl_prev = 0;
  s->sl_next = 0;
  s->sl_prev = 0;
  return off;
}

// Takes the first free block of a slab the caller validated in this epoch (r, I12)
// and knows to stay partial (sl_live + 1 < capacity); 0 if the bitmap disagrees.
inline uint64_t Heap::alloc_from(SlabRef& r, pst_slab* s, unsigned c) {
  const ClassInfo& k = kClasses[c];
  for (unsigned w = 0; w * 64 < k.capacity; w++) {
    uint64_t freebits = ~s->sl_bitmap[w];
    if (freebits == 0) continue;
    unsigned idx = w * 64 + unsigned(__builtin_ctzll(freebits));
    if (__builtin_expect(idx >= k.capacity, 0)) return 0;  // I3 says bits >= capacity are clear: the general path judges
    s->sl_bitmap[w] |= uint64_t(1) << (idx % 64);
    s->sl_live++;
    return first_of(r) + uint64_t(idx) * k.size;  // I4
  }
  return 0;
}

uint64_t Heap::alloc(uint64_t size, bool zero) {
  if (__builtin_expect(!zero, 1)) {
    // Hot path: the head slab of the class, validated earlier in this epoch (I12).
    uint64_t ser = pager_.write_serial();  // 0 unless write_ready() (I11)
    if (__builtin_expect(ser != 0 && size - 1 < PST_HEAP_MAX_SMALL, 1)) {
      unsigned c = kLookup[(size + 15) >> 4];
      const ClassInfo& k = kClasses[c];
      uint64_t page = meta()->hp_partial[c];
      SlabRef& r = refs_[page % kSlabRefs];
      if (__builtin_expect(r.serial == ser && r.tag == (page << 6 | c) && r.page == page, 1)) {
        pst_slab* s = slab_of(r);
        unsigned live = s->sl_live;
        if (__builtin_expect(s->sl_magic == PST_SLAB_MAGIC && live + 1 < k.capacity, 1)) {
          uint64_t off = alloc_from(r, s, c);
          if (__builtin_expect(off != 0, 1)) return off;
        } else if (s->sl_magic == PST_SLAB_MAGIC && live + 1 == k.capacity) {
          uint64_t off = alloc_last(r, s, c);  // the slab fills up and leaves the list
          if (off != 0) return off;
        }
      }
    } else if (ser != 0 && size > PST_HEAP_MAX_SMALL && size <= kHeapMaxAlloc) {
      return alloc_large(size);  // write_ready() (I11): alloc_slow's checks pass
    }
  }
  return alloc_slow(size, zero);
}

// Everything alloc()'s hot path does not handle: a slab not yet validated in this
// epoch (alloc_fast fills its SlabRef), a full or missing head slab, large blocks,
// zero-filled blocks, errors. Out of line so the hot path needs no stack frame.
__attribute__((noinline)) uint64_t Heap::alloc_slow(uint64_t size, bool zero) {
  if (!zero && size <= PST_HEAP_MAX_SMALL) {
    uint64_t off = alloc_fast(size);
    if (off != 0) return off;
  }
  if (__builtin_expect(!pager_.write_ready(), 0)) require_open_txn("alloc");  // I11
  if (size == 0) throw Error(Code::INVALID, "alloc(0): size must be at least 1 byte");
  if (size > kHeapMaxAlloc)
    throw Error(Code::TOO_BIG, "alloc(" + std::to_string(size) + "): the largest block is " +
                                   std::to_string(kHeapMaxAlloc) + " bytes (1 GiB - 64 KiB - 64); split the data");
  uint64_t off = size <= PST_HEAP_MAX_SMALL ? alloc_small(size_class(size)) : alloc_large(size);
  if (zero) {
    uint64_t usable = size <= PST_HEAP_MAX_SMALL ? kClasses[size_class(size)].size
                                                 : (large_pages_for(size) << PST_PAGE_SHIFT) - PST_LARGE_HEADER;
    // A slab block may have been live when the transaction began: journal it. A large
    // block is a run alloc_pages just handed out, fresh in this transaction (the pager
    // releases freed pages only at commit), or a fresh run reclaimed (I10), so its old
    // bytes never need restoring.
    if (size <= PST_HEAP_MAX_SMALL) pager_.will_write(off, usable);
    std::memset(base_ + off, 0, usable);
  }
  return off;
}

uint64_t Heap::new_slab(unsigned c, pst_heap_meta* m) {
  const ClassInfo& k = kClasses[c];
  uint64_t page = pager_.alloc_pages(k.pages);
  uint8_t* base = base_;
  auto* s = reinterpret_cast<pst_slab*>(base + (page << PST_PAGE_SHIFT));
  pager_.will_write(page << PST_PAGE_SHIFT, PST_SLAB_HEADER);  // I1 (fresh: journals nothing)
  std::memset(static_cast<void*>(s), 0, sizeof *s);
  s->sl_magic = PST_SLAB_MAGIC;
  s->sl_class = uint16_t(c);
  s->sl_pages = uint16_t(k.pages);
  s->sl_block_size = k.size;
  s->sl_capacity = uint16_t(k.capacity);
  // I5: becomes the head of the (empty) partial list
  assert(m->hp_partial[c] == 0);
  pager_.will_write(uint64_t(reinterpret_cast<uint8_t*>(&m->hp_partial[c]) - base), 8);
  m->hp_partial[c] = page;
  journal_counters(m);  // I1, I7
  m->hp_slab_pages += k.pages;
  return page;
}

uint64_t Heap::alloc_small(unsigned c) {
  const ClassInfo& k = kClasses[c];
  pst_heap_meta* m = meta();
  uint8_t* base = base_;
  uint64_t page = m->hp_partial[c];
  if (page == 0) page = new_slab(c, m);
  if (!in_file(page))
    throw Error(Code::CORRUPT, "heap partial list of class " + std::to_string(c) + " points outside the file");
  auto* s = reinterpret_cast<pst_slab*>(base + (page << PST_PAGE_SHIFT));
  if (s->sl_magic != PST_SLAB_MAGIC || s->sl_class != c || s->sl_capacity != k.capacity)
    throw Error(Code::CORRUPT, "heap partial list of class " + std::to_string(c) + " names page " +
                                   std::to_string(page) + ", which is not a slab of that class; run check()");
  // First clear bit below the capacity. Bits >= capacity are clear too (I3), so mask.
  unsigned idx = PST_SLAB_MAX_BLOCKS;
  for (unsigned w = 0; w * 64 < k.capacity; w++) {
    uint64_t freebits = ~s->sl_bitmap[w];
    if (freebits) {
      unsigned i = w * 64 + unsigned(__builtin_ctzll(freebits));
      if (i < k.capacity) idx = i;
      break;
    }
  }
  if (idx == PST_SLAB_MAX_BLOCKS || s->sl_live >= k.capacity)
    throw Error(Code::CORRUPT, "heap slab at page " + std::to_string(page) + " is on the partial list but full; run check()");
  // I1: sl_live, the links and bitmap words 0-3 share the header's first 64-byte line;
  // words 4-7 are in the second.
  pager_.will_write(page << PST_PAGE_SHIFT, idx < 256 ? 64 : PST_SLAB_HEADER);
  if (s->sl_block_size == k.size && s->sl_pages == k.pages) remember(page, page, c);  // I12
  s->sl_bitmap[idx / 64] |= uint64_t(1) << (idx % 64);
  s->sl_live++;
  if (s->sl_live == k.capacity) {  // I5: a full slab leaves the list (it is the head)
    uint64_t next = s->sl_next;
    pager_.will_write(uint64_t(reinterpret_cast<uint8_t*>(&m->hp_partial[c]) - base), 8);
    m->hp_partial[c] = next;
    if (next != 0) {
      if (!in_file(next)) throw Error(Code::CORRUPT, "heap slab link points outside the file; run check()");
      auto* ns = reinterpret_cast<pst_slab*>(base + (next << PST_PAGE_SHIFT));
      if (ns->sl_magic != PST_SLAB_MAGIC || ns->sl_class != c)
        throw Error(Code::CORRUPT, "heap slab link names page " + std::to_string(next) + ", not a slab of class " +
                                       std::to_string(c) + "; run check()");
      pager_.will_write((next << PST_PAGE_SHIFT) + offsetof(pst_slab, sl_prev), 8);
      ns->sl_prev = 0;
    }
    s->sl_next = 0;
    s->sl_prev = 0;
  }
  return (page << PST_PAGE_SHIFT) + PST_SLAB_HEADER + uint64_t(idx) * k.size;  // I4
}

// A large run freed earlier in this transaction, `pages` long and still fresh, taken
// back from the pager (I10); 0 if there is none.
uint64_t Heap::reuse_freed_run(uint64_t pages) {
  uint64_t epoch = pager_.fresh_epoch();
  for (unsigned i = 1; i <= kFreedRuns; i++) {  // newest first: a pair reuses the run it just freed
    FreedRun& r = freed_[(freed_next_ - i) % kFreedRuns];
    if (r.pages != pages || r.epoch != epoch) continue;
    uint64_t page = r.page;
    r = FreedRun{};
    uint32_t magic;
    if (!in_file(page + pages - 1)) continue;
    std::memcpy(&magic, base_ + (page << PST_PAGE_SHIFT), 4);
    if (magic == kLargeDeadMagic && pager_.reclaim_fresh(page, pages)) return page;  // I10
  }
  return 0;
}

uint64_t Heap::alloc_large(uint64_t size) {
  pst_heap_meta* m = meta();
  uint64_t pages = large_pages_for(size);
  uint64_t page = reuse_freed_run(pages);
  if (page == 0) page = pager_.alloc_pages(pages);
  uint8_t* base = base_;
  auto* h = reinterpret_cast<pst_large*>(base + (page << PST_PAGE_SHIFT));
  pager_.will_write(page << PST_PAGE_SHIFT, PST_LARGE_HEADER);  // I1 (fresh: journals nothing)
  std::memset(static_cast<void*>(h), 0, sizeof *h);
  h->lg_magic = PST_LARGE_MAGIC;
  h->lg_pages = pages;
  h->lg_size = (pages << PST_PAGE_SHIFT) - PST_LARGE_HEADER;  // I8
  journal_counters(m);  // I1, I7
  m->hp_large_pages += pages;
  m->hp_bytes_live += h->lg_size;
  m->hp_blocks_live += 1;
  uint64_t ser = pager_.write_serial();  // I12: a large run of this epoch (see free_large_ref)
  if (ser != 0)
    refs_[page % kSlabRefs] = SlabRef{ser, page, page << 6 | kLargeRef};
  return (page << PST_PAGE_SHIFT) + PST_LARGE_HEADER;  // I4
}

// ---- locating a block -------------------------------------------------------

Heap::Located Heap::locate(uint64_t off, const char* op) const {
  auto fail = [&](const std::string& why) -> Error {
    return Error(Code::INVALID, std::string(op) + "(" + hex(off) + "): " + why);
  };
  uint64_t lim = limit_cache_;
  if (off >= (lim << PST_PAGE_SHIFT) && !in_file(off >> PST_PAGE_SHIFT)) throw fail("outside the file (the store has " + std::to_string(limit_cache_) + " pages)");
  lim = limit_cache_;  // refreshed by in_file() if it had to
  if (off % PST_HEAP_ALIGN != 0) throw fail("not the start of a live block (blocks are 16-byte aligned)");
  uint64_t page = off >> PST_PAGE_SHIFT;
  uint64_t start = pager_.write_ready() ? map_run_start(page) : pager_.run_start(page);  // I11
  if (start == UINT64_MAX) throw fail("not the start of a live block (page " + std::to_string(page) + " is free)");
  if (start == 0 || is_map_chunk_page(start))
    throw fail("not the start of a live block (page " + std::to_string(page) + " belongs to the pager)");
  if (start == hdr_->hd_slots[0]) throw fail("not the start of a live block (that is the heap's meta page)");
  uint8_t* run = base_ + (start << PST_PAGE_SHIFT);
  uint32_t magic;
  std::memcpy(&magic, run, 4);
  uint64_t rel = off - (start << PST_PAGE_SHIFT);
  if (magic == PST_SLAB_MAGIC) {
    auto* s = reinterpret_cast<pst_slab*>(run);
    if (s->sl_class >= PST_HEAP_CLASS_COUNT || s->sl_block_size != kClasses[s->sl_class].size ||
        s->sl_capacity != kClasses[s->sl_class].capacity)
      throw Error(Code::CORRUPT, std::string(op) + "(" + hex(off) + "): the slab header at page " +
                                     std::to_string(start) + " is damaged; run check()");
    const ClassInfo& k = kClasses[s->sl_class];
    uint32_t bs = k.size;
    uint64_t x = rel - PST_SLAB_HEADER;  // wraps for rel < 128: caught by the range test
    uint64_t q = (x * k.recip) >> 32;    // x / bs (reciprocals_exact), x < 32 pages
    if (rel < PST_SLAB_HEADER || rel >= uint64_t(k.pages) * kPage || q * bs != x || q >= k.capacity)
      throw fail("not the start of a live block (inside a slab of " + std::to_string(bs) + "-byte blocks at page " +
                 std::to_string(start) + ")");
    unsigned idx = unsigned(q);
    if (!(s->sl_bitmap[idx / 64] >> (idx % 64) & 1)) throw fail("double free, or never allocated: the block is not live");
    return Located{off, start, s, nullptr, idx, bs};
  }
  if (magic == PST_LARGE_MAGIC) {
    auto* h = reinterpret_cast<pst_large*>(run);
    if (rel != PST_LARGE_HEADER)
      throw fail("not the start of a live block (inside the large block at " + hex((start << PST_PAGE_SHIFT) + PST_LARGE_HEADER) + ")");
    if (h->lg_pages == 0 || h->lg_pages > PST_MAP_SPAN || !in_file(start + h->lg_pages - 1) || h->lg_size != (h->lg_pages << PST_PAGE_SHIFT) - PST_LARGE_HEADER)
      throw Error(Code::CORRUPT, std::string(op) + "(" + hex(off) + "): the large-block header at page " +
                                     std::to_string(start) + " is damaged; run check()");
    return Located{off, start, nullptr, h, 0, h->lg_size};
  }
  if (magic == kSlabDeadMagic || magic == kLargeDeadMagic)
    throw fail("double free, or never allocated: the block's pages were freed earlier in this transaction");
  for (uint64_t j : journal_chunks(pager_, lim))  // error path only: name the pager's journal
    if (start == j) throw fail("not the start of a live block (page " + std::to_string(page) + " belongs to the pager)");
  throw fail("not the start of a live block (page " + std::to_string(page) + " is not heap memory)");
}

uint64_t Heap::usable_size(uint64_t off) const { return locate(off, "usable_size").usable; }

// ---- free ------------------------------------------------------------------

// Fast path of free() for the common cases, in a writable transaction (I11): a large
// block, or a live slab block whose slab neither was full nor is left empty beside
// other partial slabs (no list changes). Validates like locate(); anything else
// (including every invalid offset) returns false and free() takes the general path,
// which reports it. Keeps I1 and I3 as free_located() does.
__attribute__((noinline)) bool Heap::free_fast(uint64_t off) {
  uint64_t ser = pager_.write_serial();  // 0 unless write_ready() (I11)
  uint64_t page = off >> PST_PAGE_SHIFT;
  if (ser == 0 || off % PST_HEAP_ALIGN != 0 || page >= limit_cache_) return false;
  uint64_t start = map_run_start(page);
  if (start == UINT64_MAX || start == 0 || start == PST_MAP_PAGE(start / PST_MAP_SPAN) || start == hdr_->hd_slots[0])
    return false;
  auto* s = reinterpret_cast<pst_slab*>(base_ + (start << PST_PAGE_SHIFT));
  if (s->sl_magic == PST_LARGE_MAGIC) {  // a large block: validated as locate() does
    auto* h = reinterpret_cast<pst_large*>(s);
    if (off - (start << PST_PAGE_SHIFT) != PST_LARGE_HEADER || h->lg_pages == 0 || h->lg_pages > PST_MAP_SPAN ||
        !in_file(start + h->lg_pages - 1) || h->lg_size != (h->lg_pages << PST_PAGE_SHIFT) - PST_LARGE_HEADER)
      return false;
    free_large(start, h, false);
    return true;
  }
  if (s->sl_magic != PST_SLAB_MAGIC || s->sl_class >= PST_HEAP_CLASS_COUNT) return false;
  unsigned c = s->sl_class;
  const ClassInfo& k = kClasses[c];
  if (s->sl_block_size != k.size || s->sl_capacity != k.capacity || s->sl_pages != k.pages || page - start >= k.pages)
    return false;
  pager_.will_write(start << PST_PAGE_SHIFT, 64);  // I1: the header line with every bit a block uses (I3)
  SlabRef& r = refs_[page % kSlabRefs];
  r = SlabRef{ser, page, start << 6 | c};  // I12
  return free_in(r, off);
}

// Frees block `off` of the slab of r (validated in this epoch, I12) when that changes
// no list (the slab was not full and does not become an empty one beside others);
// false, changing nothing, otherwise or if `off` is not a live block of it.
inline bool Heap::free_in(SlabRef& r, uint64_t off) {
  pst_slab* s = slab_of(r);
  if (__builtin_expect(s->sl_magic != PST_SLAB_MAGIC, 0)) return false;  // freed (dead) since: the general path reports it
  const ClassInfo& k = kClasses[r.tag & 63];
  uint64_t x = off - first_of(r);         // wraps below the first block: caught by the range test
  uint64_t q = (x * k.recip) >> 32;    // x / size (reciprocals_exact)
  if (__builtin_expect(x >= uint64_t(k.pages) * kPage || q * k.size != x || q >= k.capacity, 0)) return false;
  unsigned idx = unsigned(q);
  uint64_t bit = uint64_t(1) << (idx % 64);
  unsigned live = s->sl_live;
  if (__builtin_expect(!(s->sl_bitmap[idx / 64] & bit) || live > k.capacity || live == 0, 0)) return false;
  if (__builtin_expect(live == k.capacity, 0)) return free_into_full(r, idx);  // the slab joins its list
  if (__builtin_expect(live == 1 && (s->sl_prev != 0 || s->sl_next != 0), 0)) return false;  // I6: empty beside others
  s->sl_bitmap[idx / 64] &= ~bit;
  s->sl_live = uint16_t(live - 1);
  return true;
}

// free()'s hot path for a block of a full slab: the slab, now with one free block,
// joins its class's partial list at the head (I5), as in free_located(). Needs the
// current head validated in this epoch (I12) and not the empty slab that the general
// path would give back (I6); returns false and changes nothing otherwise.
__attribute__((noinline)) bool Heap::free_into_full(SlabRef& r, unsigned idx) {
  pst_slab* s = slab_of(r);
  unsigned c = unsigned(r.tag & 63);
  uint64_t start = r.tag >> 6;
  pst_heap_meta* m = meta();
  uint64_t head = m->hp_partial[c];
  pst_slab* hs = nullptr;
  if (head != 0) {
    if (head == start || !(hs = cached_slab(head, c, r.serial))) return false;
    if (hs->sl_live == 0 && hs->sl_next == 0) return false;  // I6: the general path gives it back
  }
  pager_.will_write(uint64_t(reinterpret_cast<uint8_t*>(&m->hp_partial[c]) - base_), 8);  // I1 (hs, s: I12)
  s->sl_bitmap[idx / 64] &= ~(uint64_t(1) << (idx % 64));
  s->sl_live = uint16_t(s->sl_live - 1);
  s->sl_prev = 0;
  s->sl_next = head;
  if (hs) hs->sl_prev = start;
  m->hp_partial[c] = start;
  return true;
}

void Heap::free(uint64_t off) {
  // Hot path: a block of a slab page validated earlier in this epoch (I12). Empty
  // entries have page ~0, which no offset maps to, and a filled entry's serial is never 0.
  SlabRef& r = refs_[(off >> PST_PAGE_SHIFT) % kSlabRefs];
  if (__builtin_expect(r.serial == pager_.write_serial() && r.page == off >> PST_PAGE_SHIFT, 1)) {
    if (__builtin_expect((r.tag & 63) < PST_HEAP_CLASS_COUNT, 1) ? free_in(r, off) : free_large_ref(r, off)) return;
  }
  free_slow(off);
}

// free() of a large block this Heap allocated earlier in the epoch (its SlabRef has
// cls kLargeRef, I12): the page map need not be read again; the header is checked as
// locate() does. False (the general path decides) for anything else.
__attribute__((noinline)) bool Heap::free_large_ref(SlabRef& r, uint64_t off) {
  auto* h = reinterpret_cast<pst_large*>(base_ + (r.page << PST_PAGE_SHIFT));
  if (off != (r.page << PST_PAGE_SHIFT) + PST_LARGE_HEADER || h->lg_magic != PST_LARGE_MAGIC) return false;  // e.g. freed (dead) since
  uint64_t pages = h->lg_pages;
  if (pages == 0 || pages > PST_MAP_SPAN || !in_file(r.page + pages - 1) ||
      h->lg_size != (pages << PST_PAGE_SHIFT) - PST_LARGE_HEADER)
    return false;
  free_large(r.page, h, true);  // a run of this epoch: fresh (I12)
  return true;
}

// Frees the large block whose run starts at `page` (header h, validated by the caller).
// `fresh`: the run was allocated in this write epoch, so its header needs no barrier
// (I12). Both barriers come first: nothing is written if one throws.
void Heap::free_large(uint64_t page, pst_large* h, bool fresh) {
  pst_heap_meta* m = meta();
  journal_counters(m);                                          // I1, I7
  if (!fresh) pager_.will_write(page << PST_PAGE_SHIFT, 8);     // I1
  uint64_t pages = h->lg_pages, usable = h->lg_size;
  h->lg_magic = kLargeDeadMagic;  // I2: dead until the pager releases it at commit
  pager_.free_pages(page);
  freed_[freed_next_++ % kFreedRuns] = FreedRun{page, pages, pager_.fresh_epoch()};  // I10: maybe reusable
  m->hp_large_pages -= pages;  // I7
  m->hp_bytes_live -= usable;
  m->hp_blocks_live -= 1;
}

// Everything free()'s hot path does not handle (out of line, see alloc_slow).
__attribute__((noinline)) void Heap::free_slow(uint64_t off) {
  if (free_fast(off)) return;
  if (__builtin_expect(!pager_.write_ready(), 0)) require_open_txn("free");  // I11
  Located b = locate(off, "free");
  free_located(b);
}

void Heap::free_located(const Located& b) {
  pst_heap_meta* m = meta();
  uint8_t* base = base_;
  auto link_addr = [&](uint64_t page, size_t field) { return (page << PST_PAGE_SHIFT) + field; };
  auto slab_at = [&](uint64_t page) -> pst_slab* {  // a list neighbour: validated before any write to it
    if (page == 0 || !in_file(page)) throw Error(Code::CORRUPT, "heap slab link points outside the file; run check()");
    auto* n = reinterpret_cast<pst_slab*>(base + (page << PST_PAGE_SHIFT));
    if (n->sl_magic != PST_SLAB_MAGIC || n->sl_class != b.slab->sl_class)
      throw Error(Code::CORRUPT, "heap slab link names page " + std::to_string(page) + ", not a slab of the same class; run check()");
    return n;
  };
  if (b.large) {
    free_large(b.page, b.large, false);
    return;
  }
  pst_slab* s = b.slab;
  unsigned c = s->sl_class;
  const ClassInfo& k = kClasses[c];
  bool was_full = s->sl_live == k.capacity;
  pager_.will_write(b.page << PST_PAGE_SHIFT, b.index < 256 ? 64 : PST_SLAB_HEADER);  // I1 (see alloc_small)
  if (s->sl_pages == k.pages) remember(b.page, b.page, c);  // I12 (locate() checked the rest)
  s->sl_bitmap[b.index / 64] &= ~(uint64_t(1) << (b.index % 64));
  s->sl_live--;
  if (s->sl_live == 0) {
    // I6: keep an empty slab only if it is (or would be) the class's only partial slab.
    bool others = was_full ? m->hp_partial[c] != 0 : (s->sl_prev != 0 || s->sl_next != 0);
    if (others) {
      if (!was_full) {  // unlink (I5)
        uint64_t prev = s->sl_prev, next = s->sl_next;
        if (prev) {
          pst_slab* ps = slab_at(prev);
          pager_.will_write(link_addr(prev, offsetof(pst_slab, sl_next)), 8);
          ps->sl_next = next;
        } else {
          pager_.will_write(uint64_t(reinterpret_cast<uint8_t*>(&m->hp_partial[c]) - base), 8);
          m->hp_partial[c] = next;
        }
        if (next) {
          pst_slab* ns = slab_at(next);
          pager_.will_write(link_addr(next, offsetof(pst_slab, sl_prev)), 8);
          ns->sl_prev = prev;
        }
      }
      s->sl_magic = kSlabDeadMagic;  // I2 (header already journaled above)
      pager_.free_pages(b.page);
      journal_counters(m);  // I1, I7
      m->hp_slab_pages -= k.pages;  // I7
      return;
    }
  }
  if (was_full) {  // I5: a slab with a free block joins its class's list, at the head
    uint64_t head = m->hp_partial[c];
    if (head) {
      pst_slab* hs = slab_at(head);
      if (hs->sl_live == 0 && hs->sl_next == 0) {
        // I6: the list's only member is an empty slab kept for reuse; with this slab
        // on the list it is no longer needed, so give it back.
        pager_.will_write(head << PST_PAGE_SHIFT, 8);
        hs->sl_magic = kSlabDeadMagic;
        pager_.free_pages(head);
        journal_counters(m);  // I1, I7
        m->hp_slab_pages -= k.pages;  // I7
        head = 0;
      }
    }
    s->sl_prev = 0;
    s->sl_next = head;
    if (head) {
      pst_slab* hs = slab_at(head);
      pager_.will_write(link_addr(head, offsetof(pst_slab, sl_prev)), 8);
      hs->sl_prev = b.page;
    }
    pager_.will_write(uint64_t(reinterpret_cast<uint8_t*>(&m->hp_partial[c]) - base), 8);
    m->hp_partial[c] = b.page;
  }
}

// ---- realloc ---------------------------------------------------------------

uint64_t Heap::realloc(uint64_t off, uint64_t size) {
  require_txn("realloc");
  Located b = locate(off, "realloc");
  if (size == 0) throw Error(Code::INVALID, "realloc(" + hex(off) + ", 0): size must be at least 1 byte (use free)");
  if (size > kHeapMaxAlloc)
    throw Error(Code::TOO_BIG, "realloc(" + hex(off) + ", " + std::to_string(size) + "): the largest block is " +
                                   std::to_string(kHeapMaxAlloc) + " bytes");
  if (size <= b.usable && size >= b.usable / 2) return off;
  if (b.large && size > b.usable) {
    uint64_t pages = large_pages_for(size);
    if (pager_.extend_run(b.page, pages)) {  // the added pages are fresh
      pst_heap_meta* m = meta();
      pst_large* h = b.large;
      uint64_t added = pages - h->lg_pages;
      pager_.will_write(b.page << PST_PAGE_SHIFT, PST_LARGE_HEADER);  // I1
      h->lg_pages = pages;
      h->lg_size = (pages << PST_PAGE_SHIFT) - PST_LARGE_HEADER;  // I8
      journal_counters(m);  // I1, I7
      m->hp_large_pages += added;  // I7
      m->hp_bytes_live += added << PST_PAGE_SHIFT;
      return off;
    }
  }
  uint64_t fresh = alloc(size, false);
  uint64_t n = size < b.usable ? size : b.usable;
  if (size <= PST_HEAP_MAX_SMALL) pager_.will_write(fresh, n);  // as in alloc(zero): large runs are fresh
  std::memcpy(base_ + fresh, base_ + off, n);
  free_located(locate(off, "realloc"));  // re-locate: alloc may have changed list links, not the block
  return fresh;
}

// ---- roots -----------------------------------------------------------------

uint64_t Heap::root(unsigned i) const {
  if (i >= PST_HEAP_ROOT_COUNT)
    throw Error(Code::INVALID, "root(" + std::to_string(i) + "): root slots are 0.." + std::to_string(PST_HEAP_ROOT_COUNT - 1));
  return meta()->hp_roots[i];
}

void Heap::set_root(unsigned i, uint64_t off) {
  require_txn("set_root");
  if (i >= PST_HEAP_ROOT_COUNT)
    throw Error(Code::INVALID, "setRoot(" + std::to_string(i) + "): root slots are 0.." + std::to_string(PST_HEAP_ROOT_COUNT - 1));
  if (off != 0) locate(off, "setRoot");
  pst_heap_meta* m = meta();
  pager_.will_write(uint64_t(reinterpret_cast<uint8_t*>(&m->hp_roots[i]) - base_), 8);  // I1
  m->hp_roots[i] = off;
}

// ---- walking the store -------------------------------------------------------

bool Heap::pager_owned(uint64_t page, std::vector<uint64_t>* journal_pages) const {
  if (page == 0 || is_map_chunk_page(page)) return true;
  if (journal_pages)
    for (uint64_t j : *journal_pages)
      if (page == j) return true;
  return false;
}

namespace {

enum class RunKind { PAGER, META, SLAB, LARGE, DEAD, OTHER };

// Journal chunk pages: the chain from hd_jr_first, bounded (never loops, never reads
// outside the first `limit` pages).
std::vector<uint64_t> journal_chunks(const Pager& p, uint64_t limit) {
  std::vector<uint64_t> out;
  uint64_t page = p.header()->hd_jr_first;
  while (page != 0 && page < limit && out.size() < limit) {
    for (uint64_t q : out)
      if (q == page) return out;
    out.push_back(page);
    const auto* jc = reinterpret_cast<const pst_journal_chunk*>(p.base() + (page << PST_PAGE_SHIFT));
    if (jc->jc_magic != PST_JOURNAL_MAGIC) break;
    page = jc->jc_next;
  }
  return out;
}

template <typename Fn>
void walk_runs(const Pager& p, uint64_t limit, uint64_t meta_page, const std::vector<uint64_t>& jchunks,
               std::vector<std::string>* problems, Fn&& fn) {
  uint64_t page = 0;
  while (page < limit) {
    if (!p.page_allocated(page)) {
      page++;
      continue;
    }
    uint64_t len = p.run_length(page);
    if (len == 0) {
      if (problems) problems->push_back("page " + std::to_string(page) + " is allocated but not part of a run start");
      page++;
      continue;
    }
    if (len > limit - page) len = limit - page;
    RunKind kind = RunKind::OTHER;
    bool journal = false;
    for (uint64_t j : jchunks) journal |= j == page;
    if (page == 0 || is_map_chunk_page(page) || journal) {
      kind = RunKind::PAGER;
    } else if (page == meta_page) {
      kind = RunKind::META;
    } else {
      uint32_t magic;
      std::memcpy(&magic, p.base() + (page << PST_PAGE_SHIFT), 4);
      if (magic == PST_SLAB_MAGIC) kind = RunKind::SLAB;
      else if (magic == PST_LARGE_MAGIC) kind = RunKind::LARGE;
      else if (magic == kSlabDeadMagic || magic == kLargeDeadMagic) kind = RunKind::DEAD;
    }
    fn(page, len, kind);
    page += len;
  }
}

}  // namespace

void Heap::for_each_block(const std::function<void(uint64_t, uint64_t)>& fn) const {
  uint64_t limit = page_limit(pager_);
  uint64_t meta_page = pager_.slot(0);
  std::vector<uint64_t> jc = journal_chunks(pager_, limit);
  uint8_t* base = base_;
  walk_runs(pager_, limit, meta_page, jc, nullptr, [&](uint64_t page, uint64_t len, RunKind kind) {
    if (kind == RunKind::SLAB) {
      auto* s = reinterpret_cast<const pst_slab*>(base + (page << PST_PAGE_SHIFT));
      if (s->sl_class >= PST_HEAP_CLASS_COUNT) return;
      const ClassInfo& k = kClasses[s->sl_class];
      if (k.pages > len) return;  // damaged: check() reports it; never read past the run
      for (unsigned i = 0; i < k.capacity; i++)
        if (s->sl_bitmap[i / 64] >> (i % 64) & 1)
          fn((page << PST_PAGE_SHIFT) + PST_SLAB_HEADER + uint64_t(i) * k.size, k.size);
    } else if (kind == RunKind::LARGE) {
      fn((page << PST_PAGE_SHIFT) + PST_LARGE_HEADER, (len << PST_PAGE_SHIFT) - PST_LARGE_HEADER);
    }
  });
}

HeapStats Heap::stats() const {
  HeapStats st;
  for (unsigned c = 0; c < PST_HEAP_CLASS_COUNT; c++)
    st.classes[c] = HeapClassStats{kClasses[c].size, kClasses[c].pages, kClasses[c].capacity, 0, 0, 0};
  uint64_t limit = page_limit(pager_);
  st.total_pages = pager_.header()->hd_page_count;
  st.free_pages = pager_.header()->hd_free_pages;
  uint64_t meta_page = pager_.slot(0);
  if (meta_page == 0 || meta_page >= limit) return st;
  const auto* m = reinterpret_cast<const pst_heap_meta*>(base_ + (meta_page << PST_PAGE_SHIFT));
  st.meta_pages = 1;
  st.bytes_live = m->hp_bytes_live;
  st.blocks_live = m->hp_blocks_live;
  st.slab_pages = m->hp_slab_pages;
  st.large_pages = m->hp_large_pages;
  std::vector<uint64_t> jc = journal_chunks(pager_, limit);
  uint8_t* base = base_;
  walk_runs(pager_, limit, meta_page, jc, nullptr, [&](uint64_t page, uint64_t, RunKind kind) {
    if (kind == RunKind::SLAB) {
      auto* s = reinterpret_cast<const pst_slab*>(base + (page << PST_PAGE_SHIFT));
      if (s->sl_class >= PST_HEAP_CLASS_COUNT) return;
      HeapClassStats& cs = st.classes[s->sl_class];
      unsigned live = popcount_bitmap(s);
      cs.slabs++;
      cs.live += live;
      st.bytes_live += uint64_t(live) * cs.block_size;  // I7: small totals come from the slabs
      st.blocks_live += live;
      cs.capacity += cs.slab_capacity;
      st.bytes_free_in_slabs += uint64_t(cs.slab_capacity > live ? cs.slab_capacity - live : 0) * cs.block_size;
    } else if (kind == RunKind::LARGE) {
      st.large_blocks++;
    }
  });
  st.heap_pages = st.meta_pages + st.slab_pages + st.large_pages;
  st.fragmentation = st.bytes_live ? double(st.heap_pages) * PST_PAGE_SIZE / double(st.bytes_live) : 0.0;
  return st;
}

// ---- check -----------------------------------------------------------------

std::vector<std::string> Heap::check() const {
  std::vector<std::string> out;
  try {
    uint64_t limit = page_limit(pager_);
    uint64_t meta_page = pager_.slot(0);
    std::vector<uint64_t> jc = journal_chunks(pager_, limit);
    uint8_t* base = base_;
    const pst_heap_meta* m = nullptr;
    if (meta_page != 0) {
      if (meta_page >= limit) {
        out.push_back("heap meta page " + std::to_string(meta_page) + " (pager slot 0) is outside the file");
      } else if (pager_.run_start(meta_page) != meta_page || pager_.run_length(meta_page) != 1) {
        out.push_back("heap meta page " + std::to_string(meta_page) + " is not an allocated one-page run");
      } else {
        m = reinterpret_cast<const pst_heap_meta*>(base + (meta_page << PST_PAGE_SHIFT));
        if (m->hp_magic != PST_HEAP_META_MAGIC) {
          out.push_back("heap meta page " + std::to_string(meta_page) + " has a bad magic");
          m = nullptr;
        } else if (m->hp_version != kHeapVersion || m->hp_class_count != PST_HEAP_CLASS_COUNT) {
          out.push_back("heap meta page: version " + std::to_string(m->hp_version) + ", " +
                        std::to_string(m->hp_class_count) + " classes (expected " + std::to_string(kHeapVersion) +
                        ", " + std::to_string(PST_HEAP_CLASS_COUNT) + ")");
        }
      }
    }
    struct SlabInfo {
      unsigned cls, live, cap;
      uint64_t next, prev;
      bool listed;
    };
    std::unordered_map<uint64_t, SlabInfo> slabs;
    uint64_t bytes = 0, blocks = 0, slab_pages = 0, large_pages = 0, pager_pages = 0, heap_pages = 0, dead_pages = 0;
    walk_runs(pager_, limit, meta_page, jc, &out, [&](uint64_t page, uint64_t len, RunKind kind) {
      std::string at = "run at page " + std::to_string(page) + " (" + std::to_string(len) + " pages)";
      switch (kind) {
        case RunKind::PAGER:
          pager_pages += len;
          return;
        case RunKind::META:
          heap_pages += len;
          if (len != 1) out.push_back("heap meta " + at + " should be one page");
          return;
        case RunKind::DEAD:
          dead_pages += len;
          if (!pager_.in_txn()) out.push_back(at + " was freed by the heap but is still allocated (I2)");
          return;
        case RunKind::OTHER:
          out.push_back(at + " is neither pager-owned nor heap memory (I2): leaked or overwritten");
          return;
        case RunKind::LARGE: {
          heap_pages += len;
          const auto* h = reinterpret_cast<const pst_large*>(base + (page << PST_PAGE_SHIFT));
          if (h->lg_pages != len) out.push_back("large block " + at + " says lg_pages " + std::to_string(h->lg_pages) + " (I8)");
          if (h->lg_size != (len << PST_PAGE_SHIFT) - PST_LARGE_HEADER)
            out.push_back("large block " + at + " has lg_size " + std::to_string(h->lg_size) + " (I8)");
          large_pages += len;
          bytes += h->lg_size;  // I7: the meta counters cover large blocks
          blocks += 1;
          return;
        }
        case RunKind::SLAB: {
          heap_pages += len;
          const auto* s = reinterpret_cast<const pst_slab*>(base + (page << PST_PAGE_SHIFT));
          if (s->sl_class >= PST_HEAP_CLASS_COUNT) {
            out.push_back("slab " + at + " has class " + std::to_string(s->sl_class) + " (I3)");
            return;
          }
          const ClassInfo& k = kClasses[s->sl_class];
          std::string what = "slab " + at + " of class " + std::to_string(s->sl_class);
          bool ok = true;
          if (s->sl_block_size != k.size || s->sl_pages != k.pages || s->sl_capacity != k.capacity) {
            out.push_back(what + ": block size/pages/capacity " + std::to_string(s->sl_block_size) + "/" +
                          std::to_string(s->sl_pages) + "/" + std::to_string(s->sl_capacity) + " differ from the class table (I3)");
            ok = false;
          }
          if (len != k.pages) {
            out.push_back(what + ": run length differs from the class's " + std::to_string(k.pages) + " pages (I3)");
            ok = false;
          }
          for (unsigned i = k.capacity; i < PST_SLAB_MAX_BLOCKS; i++)
            if (s->sl_bitmap[i / 64] >> (i % 64) & 1) {
              out.push_back(what + ": bitmap bit " + std::to_string(i) + " beyond the capacity is set (I3)");
              ok = false;
              break;
            }
          unsigned pc = popcount_bitmap(s);
          if (pc != s->sl_live || s->sl_live > k.capacity) {
            out.push_back(what + ": sl_live " + std::to_string(s->sl_live) + " but " + std::to_string(pc) +
                          " bits set (I3)");
            ok = false;
          }
          slab_pages += len;
          (void)ok;
          slabs[page] = SlabInfo{s->sl_class, s->sl_live, k.capacity, s->sl_next, s->sl_prev, false};
          return;
        }
      }
    });
    if (m) {
      // I5, I6: walk each partial list.
      for (unsigned c = 0; c < PST_HEAP_CLASS_COUNT; c++) {
        uint64_t prev = 0, cur = m->hp_partial[c];
        size_t members = 0;
        bool has_empty = false;
        std::string lst = "partial list of class " + std::to_string(c);
        while (cur != 0) {
          auto it = slabs.find(cur);
          if (it == slabs.end()) {
            out.push_back(lst + " names page " + std::to_string(cur) + ", which is not a slab (I5)");
            break;
          }
          SlabInfo& si = it->second;
          if (si.listed) {
            out.push_back(lst + " has a cycle at page " + std::to_string(cur) + " (I5)");
            break;
          }
          si.listed = true;
          members++;
          if (si.cls != c) out.push_back(lst + " holds page " + std::to_string(cur) + " of class " + std::to_string(si.cls) + " (I5)");
          if (si.live >= si.cap) out.push_back(lst + " holds the full slab at page " + std::to_string(cur) + " (I5)");
          if (si.prev != prev)
            out.push_back(lst + ": slab " + std::to_string(cur) + " has sl_prev " + std::to_string(si.prev) +
                          ", expected " + std::to_string(prev) + " (I5)");
          has_empty |= si.live == 0;
          prev = cur;
          cur = si.next;
        }
        if (has_empty && members > 1) out.push_back(lst + " holds an empty slab besides others (I6)");
      }
      for (const auto& [page, si] : slabs) {
        if (!si.listed && si.live < si.cap)
          out.push_back("slab at page " + std::to_string(page) + " has free blocks but is on no partial list (I5)");
        if (!si.listed && (si.next != 0 || si.prev != 0))
          out.push_back("full slab at page " + std::to_string(page) + " still has list links (I5)");
      }
      // I7
      if (m->hp_bytes_live != bytes)
        out.push_back("hp_bytes_live is " + std::to_string(m->hp_bytes_live) + ", large blocks sum to " + std::to_string(bytes) + " (I7)");
      if (m->hp_blocks_live != blocks)
        out.push_back("hp_blocks_live is " + std::to_string(m->hp_blocks_live) + ", counted " + std::to_string(blocks) + " large blocks (I7)");
      if (m->hp_slab_pages != slab_pages)
        out.push_back("hp_slab_pages is " + std::to_string(m->hp_slab_pages) + ", slabs hold " + std::to_string(slab_pages) + " (I7)");
      if (m->hp_large_pages != large_pages)
        out.push_back("hp_large_pages is " + std::to_string(m->hp_large_pages) + ", large blocks hold " +
                      std::to_string(large_pages) + " (I7)");
    } else if (meta_page == 0 && heap_pages != 0) {
      out.push_back("the store has slabs or large blocks but no heap meta page (pager slot 0 is 0)");
    }
    // I9: every page accounted for.
    uint64_t pc = pager_.header()->hd_page_count, free_pages = pager_.header()->hd_free_pages;
    if (pc == limit && pager_pages + heap_pages + dead_pages + free_pages != pc)
      out.push_back("page accounting: " + std::to_string(pager_pages) + " pager + " + std::to_string(heap_pages) + " heap + " +
                    std::to_string(dead_pages) + " freed-in-transaction + " + std::to_string(free_pages) + " free != " +
                    std::to_string(pc) + " pages (I9)");
  } catch (const std::exception& e) {
    out.push_back(std::string("heap check stopped: ") + e.what());
  }
  return out;
}

}  // namespace persist
