// heap_native_test.cc — native tests of the heap core (run under ASan/UBSan by
// scripts/native-tests.sh). Plain asserts-with-messages, no framework; exits non-zero
// on any failure. Keep the whole run well under 30 s.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "heap.h"

using namespace persist;

static int g_failed = 0, g_passed = 0;
#define EXPECT(cond)                                                            \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "  %s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      g_failed++;                                                               \
      throw std::runtime_error("expectation failed");                           \
    }                                                                           \
  } while (0)

static std::string g_dir;

struct Store {
  std::string path;
  std::unique_ptr<Pager> pager;
  std::unique_ptr<Heap> heap;
  explicit Store(const std::string& name) {
    path = g_dir + "/" + name + ".persist";
    ::unlink(path.c_str());
    open();
  }
  void open() {
    OpenOptions o;
    o.max_size = 4ull << 30;
    pager = Pager::open(path, o);
    heap = std::make_unique<Heap>(*pager);
    pager->begin();
    heap->init();
    pager->commit();
  }
  void reopen() {
    heap.reset();
    pager->close();
    pager.reset();
    open();
  }
  ~Store() {
    heap.reset();
    if (pager) pager->close();
    ::unlink(path.c_str());
  }
  uint8_t* at(uint64_t off) { return pager->base() + off; }
  void fill(uint64_t off, uint64_t n, uint8_t v) {
    pager->will_write(off, n);
    std::memset(at(off), v, n);
  }
};

static std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += "\n    " + x;
  return s;
}
static bool clean(Store& s) {
  auto p = s.heap->check();
  if (!p.empty()) std::fprintf(stderr, "  check() problems:%s\n", join(p).c_str());
  return p.empty();
}

// Expects fn to throw persist::Error with `code` and a message containing `needle`.
static bool throws(Code code, const char* needle, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    if (e.code == code && std::strstr(e.what(), needle)) return true;
    std::fprintf(stderr, "  wrong error: %s (%s), wanted %s containing '%s'\n", e.what(), error_code_name(e.code),
                 error_code_name(code), needle);
    return false;
  }
  std::fprintf(stderr, "  no error, wanted %s containing '%s'\n", error_code_name(code), needle);
  return false;
}

// ---------------------------------------------------------------------------

static void test_size_classes() {
  EXPECT(Heap::class_size(0) == 16);
  EXPECT(Heap::class_size(kHeapClassCount - 1) == 32768);
  for (uint64_t s = 1; s <= kHeapMaxSmall; s++) {
    unsigned c = Heap::size_class(s);
    EXPECT(Heap::class_size(c) >= s);
    EXPECT(c == 0 || Heap::class_size(c - 1) < s);
  }
  for (unsigned c = 0; c < kHeapClassCount; c++) {
    uint64_t span = uint64_t(Heap::class_pages(c)) * PST_PAGE_SIZE;
    uint64_t used = PST_SLAB_HEADER + uint64_t(Heap::class_capacity(c)) * Heap::class_size(c);
    EXPECT(used <= span && (span - used) * 8 <= span);
  }
}

static void test_alloc_basic() {
  Store s("basic");
  Heap& h = *s.heap;
  EXPECT(throws(Code::TXN, "heap alloc needs a transaction", [&] { h.alloc(16); }));
  EXPECT(throws(Code::TXN, "heap free needs a transaction", [&] { h.free(4096 + 128); }));
  EXPECT(throws(Code::TXN, "needs a transaction", [&] { h.set_root(1, 0); }));
  s.pager->begin();
  EXPECT(throws(Code::INVALID, "alloc(0)", [&] { h.alloc(0); }));
  EXPECT(throws(Code::TOO_BIG, "largest block", [&] { h.alloc(kHeapMaxAlloc + 1); }));
  std::vector<std::pair<uint64_t, uint64_t>> blocks;
  for (uint64_t size : {1ull, 15ull, 16ull, 17ull, 100ull, 128ull, 129ull, 1000ull, 4096ull, 32767ull, 32768ull, 32769ull,
                        65536ull, 200000ull}) {
    uint64_t off = h.alloc(size, true);
    EXPECT(off % 16 == 0);
    EXPECT(off >= PST_PAGE_SIZE);
    uint64_t u = h.usable_size(off);
    EXPECT(u >= size);
    for (uint64_t i = 0; i < u; i++) EXPECT(s.at(off)[i] == 0);
    if (size <= kHeapMaxSmall) EXPECT(u == Heap::class_size(Heap::size_class(size)));
    else EXPECT(u == ((size + 64 + 4095) / 4096) * 4096 - 64);
    blocks.push_back({off, u});
  }
  for (size_t i = 0; i < blocks.size(); i++)
    for (size_t j = i + 1; j < blocks.size(); j++)
      EXPECT(blocks[i].first + blocks[i].second <= blocks[j].first || blocks[j].first + blocks[j].second <= blocks[i].first);
  HeapStats st = h.stats();
  uint64_t sum = 0;
  for (auto& b : blocks) sum += b.second;
  EXPECT(st.bytes_live == sum);
  EXPECT(st.blocks_live == blocks.size());
  EXPECT(st.large_blocks == 3);
  s.pager->commit();
  EXPECT(clean(s));
  size_t n = 0;
  h.for_each_block([&](uint64_t off, uint64_t u) {
    bool found = false;
    for (auto& b : blocks) found |= b.first == off && b.second == u;
    EXPECT(found);
    n++;
  });
  EXPECT(n == blocks.size());
  s.pager->begin();
  for (auto& b : blocks) h.free(b.first);
  s.pager->commit();
  EXPECT(clean(s));
  st = h.stats();
  EXPECT(st.bytes_live == 0 && st.blocks_live == 0 && st.large_pages == 0);
}

static void test_invalid_frees() {
  Store s("invalid");
  Heap& h = *s.heap;
  s.pager->begin();
  uint64_t a = h.alloc(48);
  uint64_t big = h.alloc(100000);
  uint64_t meta_off = s.pager->slot(0) * PST_PAGE_SIZE;
  s.pager->commit();
  s.pager->begin();
  EXPECT(throws(Code::INVALID, "16-byte aligned", [&] { h.free(a + 8); }));
  EXPECT(throws(Code::INVALID, "not the start of a live block", [&] { h.free(a + 16); }));
  EXPECT(throws(Code::INVALID, "outside the file", [&] { h.free(uint64_t(1) << 40); }));
  EXPECT(throws(Code::INVALID, "belongs to the pager", [&] { h.free(0); }));
  EXPECT(throws(Code::INVALID, "belongs to the pager", [&] { h.free(PST_PAGE_SIZE * 2); }));
  EXPECT(throws(Code::INVALID, "belongs to the pager", [&] { h.free(PST_PAGE_SIZE * PST_FIRST_JOURNAL_PAGE + 64); }));
  EXPECT(throws(Code::INVALID, "meta page", [&] { h.free(meta_off); }));
  EXPECT(throws(Code::INVALID, "inside the large block", [&] { h.free(big + 4096); }));
  EXPECT(throws(Code::INVALID, "not the start of a live block", [&] { h.free((a & ~uint64_t(4095)) + 16); }));
  EXPECT(throws(Code::INVALID, "not the start", [&] { h.realloc(a + 16, 10); }));
  EXPECT(throws(Code::INVALID, "setRoot", [&] { h.set_root(1, a + 16); }));
  EXPECT(throws(Code::INVALID, "root slots", [&] { h.set_root(PST_HEAP_ROOT_COUNT, a); }));
  EXPECT(throws(Code::INVALID, "root slots", [&] { h.root(PST_HEAP_ROOT_COUNT); }));
  h.free(a);
  EXPECT(throws(Code::INVALID, "double free", [&] { h.free(a); }));
  h.free(big);
  EXPECT(throws(Code::INVALID, "double free", [&] { h.free(big); }));  // pages still held until commit
  s.pager->commit();
  s.pager->begin();
  EXPECT(throws(Code::INVALID, "double free", [&] { h.free(a); }));
  EXPECT(throws(Code::INVALID, "is free", [&] { h.free(big); }));  // pages released at commit
  EXPECT(throws(Code::INVALID, "usable_size", [&] { h.usable_size(a); }));
  s.pager->commit();
  EXPECT(clean(s));
}

static void test_realloc() {
  Store s("realloc");
  Heap& h = *s.heap;
  s.pager->begin();
  uint64_t a = h.alloc(100);
  s.fill(a, 100, 0x5A);
  EXPECT(h.realloc(a, 112) == a);  // same class
  EXPECT(h.realloc(a, 60) == a);   // >= half: kept
  uint64_t b = h.realloc(a, 5000);  // moves to a bigger class
  EXPECT(b != a);
  for (int i = 0; i < 100; i++) EXPECT(s.at(b)[i] == 0x5A);
  EXPECT(throws(Code::INVALID, "double free", [&] { h.free(a); }));
  uint64_t c = h.realloc(b, 40000);  // small -> large
  for (int i = 0; i < 100; i++) EXPECT(s.at(c)[i] == 0x5A);
  EXPECT(h.usable_size(c) >= 40000);
  s.fill(c, h.usable_size(c), 0x33);
  // the large block is the last run: it grows in place
  uint64_t d = h.realloc(c, 400000);
  EXPECT(d == c);
  EXPECT(h.usable_size(d) >= 400000);
  for (uint64_t i = 0; i < 40000; i++) EXPECT(s.at(d)[i] == 0x33);
  uint64_t blocker = h.alloc(70000);  // right after d
  uint64_t e = h.realloc(d, 800000);  // cannot grow in place: moves
  EXPECT(e != d);
  for (uint64_t i = 0; i < 40000; i++) EXPECT(s.at(e)[i] == 0x33);
  uint64_t f = h.realloc(e, 1000);  // big shrink: moves into a slab
  EXPECT(f != e && h.usable_size(f) == 1024);
  for (uint64_t i = 0; i < 1000; i++) EXPECT(s.at(f)[i] == 0x33);
  h.free(blocker);
  EXPECT(throws(Code::INVALID, "realloc(", [&] { h.realloc(f, 0); }));
  EXPECT(throws(Code::TOO_BIG, "largest block", [&] { h.realloc(f, kHeapMaxAlloc + 1); }));
  s.pager->commit();
  EXPECT(clean(s));
  HeapStats st = h.stats();
  EXPECT(st.blocks_live == 1 && st.bytes_live == 1024);
}

static void test_empty_slabs_return() {
  Store s("slabs");
  Heap& h = *s.heap;
  unsigned c = Heap::size_class(256);
  uint32_t cap = Heap::class_capacity(c), pages = Heap::class_pages(c);
  s.pager->begin();
  std::vector<uint64_t> v;
  for (uint32_t i = 0; i < cap * 3 + 1; i++) v.push_back(h.alloc(256));
  EXPECT(h.stats().slab_pages == pages * 4);
  EXPECT(h.stats().classes[c].slabs == 4);
  s.pager->commit();
  EXPECT(clean(s));
  uint64_t free_before = s.pager->header()->hd_free_pages;
  s.pager->begin();
  // free in an interleaved order so slabs go full -> partial -> empty
  for (size_t i = 0; i < v.size(); i += 2) h.free(v[i]);
  EXPECT(clean(s));
  for (size_t i = 1; i < v.size(); i += 2) h.free(v[i]);
  s.pager->commit();
  EXPECT(clean(s));
  HeapStats st = h.stats();
  EXPECT(st.slab_pages == pages);  // the last partial slab stays (I6)
  EXPECT(st.classes[c].slabs == 1 && st.classes[c].live == 0);
  EXPECT(s.pager->header()->hd_free_pages == free_before + 3 * pages);
}

// A transaction of random operations, then abort: every heap page must be byte for
// byte what it was (I1: every metadata write was journaled).
static void test_abort_restores_everything() {
  Store s("abort");
  Heap& h = *s.heap;
  std::mt19937_64 rng(42);
  std::vector<uint64_t> live;
  auto rand_size = [&]() -> uint64_t {
    switch (rng() % 8) {
      case 0: return 1 + rng() % 16;
      case 1: case 2: case 3: return 1 + rng() % 512;
      case 4: case 5: return 1 + rng() % 8192;
      case 6: return 1 + rng() % 32768;
      default: return 32769 + rng() % 200000;
    }
  };
  for (int round = 0; round < 30; round++) {
    s.pager->begin();
    for (int i = 0; i < 200; i++) live.push_back(h.alloc(rand_size()));
    for (int i = 0; i < 100 && !live.empty(); i++) {
      size_t k = rng() % live.size();
      h.free(live[k]);
      live[k] = live.back();
      live.pop_back();
    }
    s.pager->commit();
    EXPECT(clean(s));
    // snapshot every allocated page except pager-owned ones
    uint64_t pc = s.pager->header()->hd_page_count;
    std::vector<uint8_t> snap(s.at(0), s.at(pc * PST_PAGE_SIZE));
    std::vector<bool> alloc(pc);
    for (uint64_t p = PST_INITIAL_PAGES; p < pc; p++) alloc[p] = s.pager->page_allocated(p);
    HeapStats before = h.stats();
    s.pager->begin();
    std::vector<uint64_t> tmp = live;
    for (int i = 0; i < 300; i++) {
      int op = int(rng() % 3);
      if (op == 0 || tmp.empty()) {
        tmp.push_back(h.alloc(rand_size(), rng() % 2));
      } else if (op == 1) {
        size_t k = rng() % tmp.size();
        h.free(tmp[k]);
        tmp[k] = tmp.back();
        tmp.pop_back();
      } else {
        size_t k = rng() % tmp.size();
        tmp[k] = h.realloc(tmp[k], rand_size());
      }
    }
    h.set_root(3, tmp.empty() ? 0 : tmp[0]);
    s.pager->abort();
    for (uint64_t p = PST_INITIAL_PAGES; p < pc; p++) {
      if (!alloc[p]) continue;
      bool jr = false;
      for (uint64_t j : std::vector<uint64_t>{s.pager->header()->hd_jr_first}) jr |= p >= j && p < j + PST_JOURNAL_CHUNK_PAGES;
      if (jr) continue;
      if (std::memcmp(s.at(p * PST_PAGE_SIZE), snap.data() + p * PST_PAGE_SIZE, PST_PAGE_SIZE) != 0) {
        std::fprintf(stderr, "  round %d: page %llu differs after abort\n", round, (unsigned long long)p);
        EXPECT(false);
      }
    }
    EXPECT(clean(s));
    HeapStats after = h.stats();
    EXPECT(after.bytes_live == before.bytes_live && after.heap_pages == before.heap_pages);
  }
}

// Random alloc/free/realloc against a model: contents intact, no overlap, check() clean.
static void test_model(bool reopen) {
  Store s(reopen ? "model-reopen" : "model");
  std::mt19937_64 rng(reopen ? 7 : 99);
  std::map<uint64_t, std::pair<uint64_t, uint8_t>> model;  // off -> (size, fill byte)
  auto verify = [&] {
    uint64_t prev_end = 0;
    for (auto& [off, sb] : model) {
      EXPECT(off >= prev_end);  // no overlap (ordered by offset)
      prev_end = off + sb.first;
      const uint8_t* p = s.at(off);
      for (uint64_t i = 0; i < sb.first; i++)
        if (p[i] != sb.second) {
          std::fprintf(stderr, "  block 0x%llx byte %llu changed\n", (unsigned long long)off, (unsigned long long)i);
          EXPECT(false);
        }
    }
    EXPECT(clean(s));
    EXPECT(s.heap->stats().blocks_live == model.size());
  };
  for (int step = 0; step < 4000; step++) {
    if (step % 50 == 0) s.pager->begin();
    int op = int(rng() % 10);
    uint64_t size = (rng() % 4 == 0) ? 1 + rng() % 70000 : 1 + rng() % 600;
    if (op < 5 || model.empty()) {
      uint64_t off = s.heap->alloc(size);
      uint8_t v = uint8_t(rng());
      s.fill(off, size, v);
      EXPECT(!model.count(off));
      model[off] = {size, v};
    } else {
      auto it = model.begin();
      std::advance(it, long(rng() % model.size()));
      uint64_t off = it->first;
      auto sb = it->second;
      model.erase(it);
      if (op < 8) {
        s.heap->free(off);
      } else {
        uint64_t n = s.heap->realloc(off, size);
        uint64_t keep = std::min(size, sb.first);
        for (uint64_t i = 0; i < keep; i++) EXPECT(s.at(n)[i] == sb.second);
        s.fill(n, size, sb.second);
        model[n] = {size, sb.second};
      }
    }
    if (step % 50 == 49) {
      s.pager->commit();
      if (step % 500 == 499) {
        if (reopen) s.reopen();
        verify();
      }
    }
  }
  verify();
  s.pager->begin();
  for (auto& [off, sb] : model) s.heap->free(off);
  s.pager->commit();
  model.clear();
  verify();
  HeapStats st = s.heap->stats();
  EXPECT(st.bytes_live == 0 && st.large_pages == 0);
}

static void test_roots_persist() {
  Store s("roots");
  s.pager->begin();
  uint64_t a = s.heap->alloc(24);
  s.heap->set_root(1, a);
  s.pager->commit();
  s.reopen();
  EXPECT(s.heap->root(1) == a);
  EXPECT(s.heap->root(0) == 0);
  s.pager->begin();
  s.heap->set_root(1, 0);
  s.pager->abort();
  EXPECT(s.heap->root(1) == a);
}

static void test_check_finds_corruption() {
  Store s("corrupt");
  Heap& h = *s.heap;
  s.pager->begin();
  std::vector<uint64_t> v;
  for (int i = 0; i < 300; i++) v.push_back(h.alloc(64));
  uint64_t big = h.alloc(50000);
  s.pager->commit();
  EXPECT(clean(s));
  auto corrupt = [&](uint64_t off, const void* bytes, size_t n, const char* needle) {
    std::vector<uint8_t> old(s.at(off), s.at(off) + n);
    std::memcpy(s.at(off), bytes, n);
    auto p = h.check();
    bool found = false;
    for (auto& x : p) found |= x.find(needle) != std::string::npos;
    if (!found) std::fprintf(stderr, "  corruption not reported (wanted '%s'):%s\n", needle, join(p).c_str());
    std::memcpy(s.at(off), old.data(), n);
    EXPECT(found);
    EXPECT(clean(s));
  };
  uint64_t slab = v[0] & ~uint64_t(4095);
  uint16_t live = 3;
  corrupt(slab + offsetof(pst_slab, sl_live), &live, 2, "sl_live");
  uint64_t bit = ~uint64_t(0);
  corrupt(slab + offsetof(pst_slab, sl_bitmap) + 56, &bit, 8, "beyond the capacity");
  uint16_t cls = 77;
  corrupt(slab + offsetof(pst_slab, sl_class), &cls, 2, "class 77");
  uint64_t meta = s.pager->slot(0) * PST_PAGE_SIZE;
  uint64_t n = 12345;
  corrupt(meta + offsetof(pst_heap_meta, hp_bytes_live), &n, 8, "hp_bytes_live");
  unsigned c = Heap::size_class(64);
  uint64_t self = s.pager->header()->hd_page_count + 5;
  corrupt(meta + offsetof(pst_heap_meta, hp_partial) + 8 * c, &self, 8, "not a slab");
  // make the list cyclic: head.next = head
  uint64_t head = reinterpret_cast<pst_heap_meta*>(s.at(meta))->hp_partial[c];
  EXPECT(head != 0);
  corrupt(head * PST_PAGE_SIZE + offsetof(pst_slab, sl_next), &head, 8, "cycle");
  uint32_t junk = 0xDEADBEEF;
  corrupt(big - PST_LARGE_HEADER, &junk, 4, "neither pager-owned nor heap");
  uint64_t pages = 999;
  corrupt(big - PST_LARGE_HEADER + offsetof(pst_large, lg_pages), &pages, 8, "lg_pages");
  // Random garbage over every heap header: check() must not crash.
  std::mt19937_64 rng(5);
  for (int t = 0; t < 200; t++) {
    uint64_t off = (rng() % 2 ? slab : meta) + (rng() % 128);
    uint8_t b = uint8_t(rng());
    uint8_t old = *s.at(off);
    *s.at(off) = b;
    (void)h.check();
    (void)h.stats();
    *s.at(off) = old;
  }
  EXPECT(clean(s));
}

static void test_heap_in_other_handle() {
  // Two Pager handles on one file (as two processes would have): a block allocated
  // through one is freed through the other.
  Store s("shared");
  OpenOptions o;
  auto p2 = Pager::open(s.path, o);
  Heap h2(*p2);
  s.pager->begin();
  uint64_t a = s.heap->alloc(5000);
  s.pager->commit();
  p2->begin();
  EXPECT(h2.usable_size(a) == 5120);
  h2.free(a);
  p2->commit();
  s.pager->begin();
  EXPECT(throws(Code::INVALID, "double free", [&] { s.heap->free(a); }));
  s.pager->commit();
  p2->close();
  EXPECT(clean(s));
}


// The fast paths trust slabs validated earlier in the same write epoch (heap I12).
// Every epoch change (savepoint, rollback_to, commit, abort) must make them journal
// and validate again, and list changes made by the fast paths (a slab filling up,
// a full slab getting a free block) must roll back exactly.
static void test_slab_refs_follow_epochs() {
  Store s("refs");
  Heap& h = *s.heap;
  const uint64_t cap = Heap::class_capacity(0);  // 16-byte blocks per slab
  auto live = [&] {
    std::vector<uint64_t> v;
    h.for_each_block([&](uint64_t off, uint64_t) { v.push_back(off); });
    return v;
  };
  // a. A free after a savepoint journals the slab header again: rollback_to restores it.
  s.pager->begin();
  uint64_t a = h.alloc(16), b = h.alloc(16);
  uint64_t sp = s.pager->savepoint();
  h.free(a);  // same slab as the allocs before the savepoint
  EXPECT(throws(Code::INVALID, "double free", [&] { h.free(a); }));
  s.pager->rollback_to(sp);
  EXPECT(h.usable_size(a) == 16);
  // b. An alloc after a savepoint, rolled back: the block is free again.
  sp = s.pager->savepoint();
  uint64_t c = h.alloc(16);
  s.pager->rollback_to(sp);
  EXPECT(throws(Code::INVALID, "double free", [&] { h.free(c); }));
  s.pager->commit();
  EXPECT(clean(s));
  EXPECT((live() == std::vector<uint64_t>{a, b}));
  // c. Fill three slabs, then in one transaction free blocks of full slabs (they join
  // the list) and allocate until slabs fill (they leave it); abort restores all.
  s.pager->begin();
  std::vector<uint64_t> blocks{a, b};
  for (uint64_t i = 0; i < 3 * cap - 2; i++) blocks.push_back(h.alloc(16));
  s.pager->commit();
  EXPECT(clean(s));
  std::vector<uint64_t> before = live();
  HeapStats st0 = h.stats();
  std::mt19937_64 rng(5);
  for (int round = 0; round < 2; round++) {
    s.pager->begin();
    std::vector<uint64_t> tmp = blocks;
    for (int i = 0; i < 2000; i++) {
      if (tmp.empty() || rng() % 2) {
        tmp.push_back(h.alloc(16));
      } else {
        size_t k = rng() % tmp.size();
        h.free(tmp[k]);
        tmp[k] = tmp.back();
        tmp.pop_back();
      }
      if (i % 500 == 499) EXPECT(clean(s));  // lists and counts stay consistent mid-transaction
    }
    std::sort(tmp.begin(), tmp.end());
    EXPECT(live() == tmp);
    if (round == 0) {
      s.pager->abort();
      EXPECT(live() == before);
      HeapStats st1 = h.stats();
      EXPECT(st1.blocks_live == st0.blocks_live && st1.slab_pages == st0.slab_pages);
    } else {
      s.pager->commit();
      EXPECT(live() == tmp);
      blocks = tmp;
    }
    EXPECT(clean(s));
  }
  // d. A second Heap on the same Pager empties a slab the first one has validated in
  // this epoch: the first one's free of a block there is a double free, not a write.
  s.pager->begin();
  for (uint64_t off : blocks) h.free(off);
  s.pager->commit();
  s.pager->begin();
  std::vector<uint64_t> x, y;
  for (uint64_t i = 0; i < cap; i++) x.push_back(h.alloc(16));      // slab 1, full
  for (uint64_t i = 0; i < 2; i++) y.push_back(h.alloc(16));        // slab 2
  h.free(y[0]);                                                     // h validates slab 2
  Heap h2(*s.pager);
  h2.free(y[1]);  // slab 2 empty beside slab 1? slab 1 is full (on no list): kept
  h2.free(x[0]);  // slab 1 joins the list: slab 2, empty, is given back (I6)
  EXPECT(throws(Code::INVALID, "double free", [&] { h.free(y[1]); }));
  EXPECT(throws(Code::INVALID, "", [&] { h.free(y[0]); }));
  s.pager->commit();
  EXPECT(clean(s));
  EXPECT(h.stats().blocks_live == cap - 1);
  // e. Large runs allocated in the epoch are freed without a header barrier (fresh);
  // after a savepoint the same run is not fresh any more: its free must be journaled.
  s.pager->begin();
  uint64_t l1 = h.alloc(60000);
  h.free(l1);
  EXPECT(throws(Code::INVALID, "double free", [&] { h.free(l1); }));
  uint64_t l2 = h.alloc(60000);
  EXPECT(l2 == l1);
  sp = s.pager->savepoint();
  h.free(l2);
  s.pager->rollback_to(sp);
  EXPECT(h.usable_size(l2) == 15 * 4096 - 64);
  s.pager->commit();
  EXPECT(clean(s));
  EXPECT(h.stats().large_blocks == 1);
}

// Random bytes over the heap's metadata (meta page, slab and large headers): check(),
// stats() and for_each_block() must never crash, and alloc/free/realloc must either
// work or throw persist::Error — never touch memory outside the mapping (ASan/SEGV).
static void test_fuzz_metadata() {
  Store s("fuzz");
  Heap& h = *s.heap;
  std::mt19937_64 rng(77);
  std::vector<uint64_t> blocks;
  s.pager->begin();
  for (int i = 0; i < 400; i++) blocks.push_back(h.alloc(1 + rng() % (i % 10 == 0 ? 100000 : 3000)));
  s.pager->commit();
  std::vector<uint64_t> headers{s.pager->slot(0) * PST_PAGE_SIZE};
  for (uint64_t b : blocks) headers.push_back(s.pager->run_start(b / PST_PAGE_SIZE) * PST_PAGE_SIZE);
  int errors = 0;
  for (int round = 0; round < 300; round++) {
    s.pager->begin();
    // corrupt 1-4 random bytes of headers (journaled, so abort() repairs them)
    for (int k = 0, n = 1 + int(rng() % 4); k < n; k++) {
      uint64_t base = headers[rng() % headers.size()];
      uint64_t off = base + (base == headers[0] ? rng() % sizeof(pst_heap_meta) : rng() % PST_SLAB_HEADER);
      s.pager->will_write(off, 1);
      *s.at(off) = uint8_t(rng());
    }
    (void)h.check();
    (void)h.stats();
    size_t seen = 0;
    h.for_each_block([&](uint64_t, uint64_t) { seen++; });
    for (int k = 0; k < 10; k++) {
      try {
        switch (rng() % 3) {
          case 0: h.alloc(1 + rng() % 40000); break;
          case 1: h.free(blocks[rng() % blocks.size()]); break;
          default: h.realloc(blocks[rng() % blocks.size()], 1 + rng() % 40000); break;
        }
      } catch (const Error&) {
        errors++;
      }
    }
    s.pager->abort();
  }
  EXPECT(errors > 0);  // the corruption was noticed at least sometimes
  EXPECT(clean(s));    // and every change was rolled back
}

// A large block freed in the transaction that allocated it is reused at once (I10);
// one that was live when the transaction (or its latest savepoint) began is not.
// Abort and commit leave a clean heap either way.
static void test_reuse_freed_large() {
  Store s("reuse");
  Heap& h = *s.heap;
  s.pager->begin();
  uint64_t old = h.alloc(60000);
  s.pager->commit();
  uint64_t pages = s.pager->header()->hd_page_count;
  s.pager->begin();
  uint64_t a = h.alloc(60000);
  h.free(a);
  uint64_t b = h.alloc(60000);
  EXPECT(b == a);                   // same run, taken back from the pager
  EXPECT(h.usable_size(b) == 15 * 4096 - 64);
  h.free(old);                      // live at begin(): released only at commit
  EXPECT(throws(Code::INVALID, "double free", [&] { h.free(old); }));
  uint64_t c = h.alloc(60000);
  EXPECT(c != old);
  uint64_t z = h.alloc(40000);      // another page count: not reused
  h.free(z);
  uint64_t z2 = h.alloc(60000, true);
  EXPECT(z2 != z);
  for (uint64_t i = 0; i < h.usable_size(z2); i++) EXPECT(s.at(z2)[i] == 0);
  h.free(z2);
  uint64_t sp = s.pager->savepoint();
  uint64_t d = h.alloc(60000);      // fresh before the savepoint only
  EXPECT(d != z2);
  h.free(d);
  EXPECT(h.alloc(60000) == d);      // fresh since the savepoint: reused
  s.pager->rollback_to(sp);
  s.pager->abort();
  EXPECT(clean(s));
  EXPECT(s.pager->header()->hd_page_count == pages);
  EXPECT(h.usable_size(old) == 15 * 4096 - 64);
  HeapStats st = h.stats();
  EXPECT(st.large_blocks == 1 && st.blocks_live == 1);
  // The same with commit: the reused block is live, the freed ones are gone.
  s.pager->begin();
  a = h.alloc(60000);
  s.fill(a, 100, 7);
  h.free(a);
  b = h.alloc(60000);
  s.fill(b, 100, 9);
  h.free(old);
  s.pager->commit();
  EXPECT(clean(s));
  EXPECT(b == a && s.at(b)[99] == 9);
  st = h.stats();
  EXPECT(st.large_blocks == 1 && st.blocks_live == 1 && h.usable_size(b) == 15 * 4096 - 64);
  EXPECT(throws(Code::INVALID, "", [&] { s.pager->begin(); h.free(old); }));
  s.pager->abort();
  // After close, heap calls throw CLOSED instead of reading the unmapped file.
  s.pager->begin();
  s.pager->will_write(b, 8);
  s.pager->close();
  EXPECT(throws(Code::CLOSED, "closed", [&] { h.free(b); }));
  EXPECT(throws(Code::CLOSED, "closed", [&] { h.alloc(16); }));
  s.reopen();
  EXPECT(clean(s));
}

int main() {
  const char* tmp = std::getenv("TMPDIR");
  g_dir = std::string(tmp ? tmp : "/tmp") + "/heap-native-" + std::to_string(::getpid());
  if (::mkdir(g_dir.c_str(), 0700) != 0) {
    std::perror("mkdir");
    return 2;
  }
  struct T {
    const char* name;
    std::function<void()> fn;
  } tests[] = {
      {"size classes", test_size_classes},
      {"alloc basic", test_alloc_basic},
      {"invalid frees", test_invalid_frees},
      {"realloc", test_realloc},
      {"empty slabs return to the pager", test_empty_slabs_return},
      {"abort restores every heap byte", test_abort_restores_everything},
      {"large runs freed in their transaction are reused", test_reuse_freed_large},
      {"slab refs follow write epochs", test_slab_refs_follow_epochs},
      {"model", [] { test_model(false); }},
      {"model with reopen", [] { test_model(true); }},
      {"roots persist", test_roots_persist},
      {"check finds corruption", test_check_finds_corruption},
      {"two handles share a heap", test_heap_in_other_handle},
      {"fuzzed metadata never crashes", test_fuzz_metadata},
  };
  for (auto& t : tests) {
    try {
      t.fn();
      g_passed++;
      std::printf("ok   %s\n", t.name);
    } catch (const std::exception& e) {
      if (std::string(e.what()) != "expectation failed") {
        std::fprintf(stderr, "  exception: %s\n", e.what());
        g_failed++;
      }
      std::printf("FAIL %s\n", t.name);
    }
  }
  ::rmdir(g_dir.c_str());
  std::printf("heap native: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
