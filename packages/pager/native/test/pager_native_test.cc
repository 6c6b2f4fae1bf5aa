// Native tests of the pager core, run under AddressSanitizer + UBSan by
// scripts/native-tests.sh (plain cmake, no Node). Each test prints its name; any
// failed CHECK prints the line and the run exits 1.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "pager.h"

using persist::Code;
using persist::Error;
using persist::OpenOptions;
using persist::Pager;

static int g_failed = 0, g_passed = 0;
static std::string g_dir;

#define CHECK(c)                                                         \
  do {                                                                   \
    if (!(c)) {                                                          \
      std::fprintf(stderr, "  CHECK failed at line %d: %s\n", __LINE__, #c); \
      ++g_failed;                                                        \
      return;                                                            \
    }                                                                    \
  } while (0)

template <class F>
static Code code_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code;
  }
  return Code(0);
}

static std::string path(const char* name) { return g_dir + "/" + name; }
static constexpr uint64_t P = PST_PAGE_SIZE;

static void t_create_layout() {
  auto p = Pager::open(path("a.persist"), OpenOptions{});
  CHECK(p->header()->hd_page_count == PST_INITIAL_PAGES);
  CHECK(std::memcmp(p->header()->hd_magic, PST_MAGIC_BYTES, 8) == 0);
  CHECK(p->check().empty());
  CHECK(p->run_length(0) == 1);
  CHECK(p->run_length(1) == PST_MAP_CHUNK_PAGES);
  CHECK(p->run_length(PST_FIRST_JOURNAL_PAGE) == PST_JOURNAL_CHUNK_PAGES);
  CHECK(p->run_start(5) == 1);
  p->close();
  CHECK(p->closed());
  CHECK(code_of([&] { p->begin(); }) == Code::CLOSED);
  ++g_passed;
}

static void t_alloc_free_extend() {
  auto p = Pager::open(path("b.persist"), OpenOptions{});
  p->begin();
  uint64_t a = p->alloc_pages(3), b = p->alloc_pages(5), c = p->alloc_pages(1);
  CHECK(b == a + 3 && c == b + 5);
  CHECK(p->run_length(b) == 5 && p->run_start(b + 4) == b && p->run_start(c) == c);
  p->commit();
  p->begin();
  p->free_pages(b);
  CHECK(code_of([&] { p->free_pages(b); }) == Code::INVALID);
  CHECK(code_of([&] { p->free_pages(b + 1); }) == Code::INVALID);
  p->commit();
  CHECK(p->run_start(b) == UINT64_MAX);
  p->begin();
  CHECK(p->alloc_pages(6) != b);  // does not fit in the 5-page hole
  CHECK(p->alloc_pages(4) == b);  // first fit
  CHECK(p->extend_run(b, 5));     // the fifth page of the hole is free
  CHECK(!p->extend_run(b, 6));    // c follows
  CHECK(p->run_length(b) == 5);
  p->commit();
  CHECK(p->check().empty());
  ++g_passed;
}

static void t_abort_restores() {
  auto p = Pager::open(path("c.persist"), OpenOptions{});
  p->begin();
  uint64_t pg = p->alloc_pages(4);
  uint8_t* d = p->base() + pg * P;
  for (uint64_t i = 0; i < 4 * P; ++i) d[i] = uint8_t(i * 7);
  p->commit();
  uint64_t pages = p->header()->hd_page_count;
  p->begin();
  p->will_write(pg * P + 10, 3 * P);
  std::memset(d + 10, 0xAB, 3 * P);
  p->set_slot(1, 42);
  uint64_t big = p->alloc_pages(400);  // grows the file
  CHECK(p->header()->hd_page_count > pages);
  (void)big;
  p->abort();
  for (uint64_t i = 0; i < 4 * P; ++i) CHECK(d[i] == uint8_t(i * 7));
  CHECK(p->slot(1) == 0);
  CHECK(p->header()->hd_page_count == pages);
  CHECK(p->check().empty());
  ++g_passed;
}

static void t_savepoints() {
  auto p = Pager::open(path("d.persist"), OpenOptions{});
  p->begin();
  uint64_t pg = p->alloc_pages(1);
  p->commit();
  uint64_t* v = reinterpret_cast<uint64_t*>(p->base() + pg * P);
  p->begin();
  p->will_write(pg * P, 8);
  v[0] = 1;
  uint64_t sp = p->savepoint();
  p->will_write(pg * P, 16);
  v[0] = 2;
  v[1] = 2;
  uint64_t x = p->alloc_pages(2);
  p->free_pages(pg);
  p->rollback_to(sp);
  CHECK(v[0] == 1 && v[1] == 0);
  CHECK(!p->page_allocated(x));
  CHECK(p->run_length(pg) == 1);
  p->commit();
  CHECK(v[0] == 1 && p->run_length(pg) == 1);  // the free was undone too
  CHECK(p->check().empty());
  ++g_passed;
}

static void t_big_journal() {
  // A transaction journaling ~2 MiB spans many journal chunks; abort restores it,
  // commit trims the chain back to 4 chunks.
  auto p = Pager::open(path("e.persist"), OpenOptions{});
  p->begin();
  uint64_t pg = p->alloc_pages(512);
  std::memset(p->base() + pg * P, 0x11, 512 * P);
  p->commit();
  p->begin();
  p->will_write(pg * P, 512 * P);
  std::memset(p->base() + pg * P, 0x22, 512 * P);
  CHECK(p->stats().journal_chunks > 10);
  p->abort();
  for (uint64_t i = 0; i < 512 * P; ++i)
    if (p->base()[pg * P + i] != 0x11) CHECK(false);
  CHECK(p->stats().journal_chunks == 1);
  CHECK(p->check().empty());
  p->begin();
  for (uint64_t i = 0; i < 512; ++i) p->will_write(pg * P + i * P + 64 * (i % 64), 64);  // many small entries
  p->will_write(pg * P, 512 * P);
  std::memset(p->base() + pg * P, 0x33, 512 * P);
  p->commit();
  CHECK(p->stats().journal_chunks == 4);
  CHECK(p->check().empty());
  // The chunks freed by the trim are reused.
  CHECK(p->header()->hd_free_pages > 0);
  ++g_passed;
}

static void t_dead_holder() {
  std::string f = path("f.persist");
  auto p = Pager::open(f, OpenOptions{});
  p->begin();
  uint64_t pg = p->alloc_pages(1);
  uint64_t* v = reinterpret_cast<uint64_t*>(p->base() + pg * P);
  v[0] = 7;
  p->commit();
  pid_t c = fork();
  if (c == 0) {
    auto q = Pager::open(f, OpenOptions{});
    q->begin();
    q->will_write(pg * P, 8);
    *reinterpret_cast<uint64_t*>(q->base() + pg * P) = 99;
    q->alloc_pages(1000);
    _exit(0);  // dies holding the lock, journal non-empty
  }
  int st = 0;
  waitpid(c, &st, 0);
  CHECK(WIFEXITED(st));
  uint32_t flags = p->begin();
  CHECK(flags & persist::BEGIN_RECOVERED);
  CHECK(v[0] == 7);
  p->commit();
  CHECK(p->check().empty());
  ++g_passed;
}

// A process killed in the middle of a recovery leaves a shorter valid journal: the
// next recovery finishes the job (I5). Deterministic: the rollback hook _exits after
// k entries, for several k.
static uint64_t g_die_after = 0, g_undone = 0;
static void die_hook(uint64_t) {
  if (++g_undone >= g_die_after) _exit(0);
}

static void t_recovery_idempotent() {
  std::string f = path("k.persist");
  auto p = Pager::open(f, OpenOptions{});
  p->begin();
  uint64_t pg = p->alloc_pages(64);
  uint8_t* d = p->base() + pg * P;
  for (uint64_t i = 0; i < 64 * P; ++i) d[i] = uint8_t(i % 251);
  p->commit();
  uint64_t pages = p->header()->hd_page_count;
  for (uint64_t k : {1ull, 2ull, 5ull, 17ull, 40ull, 63ull}) {
    // 1. a holder dies with a journal of many entries (one per page + allocations)
    pid_t c = fork();
    if (c == 0) {
      auto q = Pager::open(f, OpenOptions{});
      q->begin();
      for (uint64_t i = 0; i < 64; ++i) {
        q->will_write((pg + i) * P + 64 * (i % 3), 128);  // separate entries
        std::memset(q->base() + (pg + i) * P + 64 * (i % 3), 0xEE, 128);
      }
      q->alloc_pages(500);  // growth + map changes
      q->set_slot(3, 1234);
      _exit(0);
    }
    int st = 0;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st));
    // 2. the next locker dies after undoing k entries
    c = fork();
    if (c == 0) {
      g_die_after = k;
      g_undone = 0;
      persist::testing::rollback_hook = die_hook;
      auto q = Pager::open(f, OpenOptions{});
      q->begin();
      _exit(3);  // not reached: the hook exits first
    }
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(p->header()->hd_jr_entries > 0);  // a shorter journal remains
    // 3. a third locker completes the recovery
    uint32_t flags = p->begin();
    CHECK(flags & persist::BEGIN_RECOVERED);
    for (uint64_t i = 0; i < 64 * P; ++i)
      if (d[i] != uint8_t(i % 251)) CHECK(false);
    CHECK(p->slot(3) == 0);
    CHECK(p->header()->hd_page_count == pages);
    p->commit();
    CHECK(p->check().empty());
  }
  ++g_passed;
}

static void t_bad_files() {
  std::string f = path("g.persist");
  int fd = ::open(f.c_str(), O_RDWR | O_CREAT, 0600);
  CHECK(fd >= 0);
  CHECK(code_of([&] { Pager::open(f, OpenOptions{}); }) == Code::NOT_STORE);  // empty
  std::vector<uint8_t> junk(3 * P, 0x5A);
  CHECK(pwrite(fd, junk.data(), junk.size(), 0) == ssize_t(junk.size()));
  CHECK(code_of([&] { Pager::open(f, OpenOptions{}); }) == Code::NOT_STORE);
  ::close(fd);
  OpenOptions o;
  o.create = false;
  CHECK(code_of([&] { Pager::open(path("missing"), o); }) == Code::NOT_FOUND);
  CHECK(code_of([&] { Pager::open(g_dir, OpenOptions{}); }) == Code::INVALID);
  o = OpenOptions{};
  o.durability = persist::Durability::FULL;
  {  // durability 'full' (F1-F10): commit, abort, growth, reopen; a 'process' opener is refused
    auto p = Pager::open(path("h.persist"), o);
    p->begin();
    uint64_t pg = p->alloc_pages(300);
    std::memset(p->base() + pg * P, 0x5a, 300 * P);
    p->set_slot(1, pg);
    p->commit();
    p->begin();
    p->will_write(pg * P, 8);
    std::memset(p->base() + pg * P, 0x11, 8);
    p->abort();
    CHECK(p->base()[pg * P] == 0x5a);
    CHECK(code_of([&] { Pager::open(path("h.persist"), OpenOptions{}); }) == Code::INVALID);
    CHECK(p->check().empty());
    p->close();
    auto q = Pager::open(path("h.persist"), o);
    CHECK(q->slot(1) == pg && q->base()[pg * P + 300 * P - 1] == 0x5a);
    CHECK(q->check().empty());
    // F18: a transaction journaling ~1.2 MiB grows the chain; its commit trims it to 4
    // chunks (freed pages reusable), and the trim survives reopen (replay)
    uint64_t free0 = q->header()->hd_free_pages;
    q->begin();
    q->will_write(pg * P, 300 * P);
    std::memset(q->base() + pg * P, 0x33, 300 * P);
    CHECK(q->stats().journal_chunks > 10);
    q->commit();
    CHECK(q->stats().journal_chunks == 4);
    CHECK(q->check().empty());
    CHECK(q->header()->hd_free_pages > free0);
    q->close();
    auto r = Pager::open(path("h.persist"), o);
    r->begin();
    CHECK(r->stats().journal_chunks == 4);
    CHECK(r->base()[pg * P] == 0x33 && r->base()[pg * P + 300 * P - 1] == 0x33);
    CHECK(r->check().empty());
    uint64_t count0 = r->header()->hd_page_count;
    r->alloc_pages(16);  // fits in a freed chunk's pages: no growth
    CHECK(r->header()->hd_page_count == count0);
    r->commit();
    CHECK(r->check().empty());
  }
  ++g_passed;
}

static void t_second_gib_range() {
  // Growth past 1 GiB creates map chunk 1 at page 262144.
  auto p = Pager::open(path("i.persist"), OpenOptions{});
  p->begin();
  uint64_t a = p->alloc_pages(PST_MAP_SPAN - 100);
  uint64_t b = p->alloc_pages(1000);
  CHECK(b >= PST_MAP_SPAN + PST_MAP_CHUNK_PAGES);
  CHECK(p->run_length(PST_MAP_SPAN) == PST_MAP_CHUNK_PAGES);
  CHECK(code_of([&] { p->free_pages(PST_MAP_SPAN); }) == Code::INVALID);
  CHECK(code_of([&] { p->will_write(PST_MAP_SPAN * P + 8, 8); }) == Code::INVALID);
  p->base()[(b + 999) * P] = 1;
  p->commit();
  for (const std::string& s : p->check()) std::fprintf(stderr, "  check: %s\n", s.c_str());
  CHECK(p->check().empty());
  p->begin();
  p->free_pages(a);
  p->commit();
  for (const std::string& s : p->check()) std::fprintf(stderr, "  check: %s\n", s.c_str());
  CHECK(p->check().empty());
  ++g_passed;
}

// Regression (I12): when journaling the map bits of a run being allocated needs a new
// journal chunk, the chunk must not be carved out of that same run.
static void t_alloc_while_journal_full() {
  for (uint64_t fill = 63872; fill <= 64512; fill += 64) {  // every position near the chunk end
    std::string f = path("l.persist");
    unlink(f.c_str());
    auto p = Pager::open(f, OpenOptions{});
    p->begin();
    uint64_t pg = p->alloc_pages(20);
    p->commit();
    p->begin();
    p->will_write(pg * P, fill);        // chunk 0 nearly full
    uint64_t a = p->alloc_pages(300);  // its map lines may need the next chunk
    CHECK(p->run_length(a) == 300);
    std::memset(p->base() + a * P, 0x5C, 300 * P);
    auto problems = p->check();
    for (const std::string& s : problems) std::fprintf(stderr, "  check (fill %llu): %s\n", (unsigned long long)fill, s.c_str());
    CHECK(problems.empty());
    p->commit();
    CHECK(p->check().empty());
  }
  ++g_passed;
}

static void t_close_keep_range() {
  auto p = Pager::open(path("j.persist"), OpenOptions{});
  uint8_t* b = nullptr;
  uint64_t n = 0;
  p->close_keep_address_range(&b, &n);
  CHECK(b != nullptr && n == PST_INITIAL_PAGES * P);
  CHECK(b[0] == 0);  // zero page, not the file
  b[0] = 1;          // writable, private
  munmap(b, n);
  ++g_passed;
}

// will_write's inline cache (I13): a range journaled in this transaction costs nothing
// again, but every transaction boundary, savepoint and close forgets it.
static void t_write_cache() {
  auto p = Pager::open(path("wc.persist"), OpenOptions{});
  p->begin();
  uint64_t pg = p->alloc_pages(2);
  std::memset(p->base() + pg * P, 1, 2 * P);
  p->commit();
  uint8_t* d = p->base() + pg * P;
  CHECK(!p->write_ready());
  CHECK(code_of([&] { p->will_write(pg * P, 8); }) == Code::TXN);
  p->begin();
  CHECK(!p->write_ready());
  p->will_write(pg * P + 100, 8);  // journals line 1
  CHECK(p->write_ready());
  d[100] = 2;
  p->will_write(pg * P + 64, 64);  // cached: no second entry
  uint64_t entries = p->header()->hd_jr_entries;
  p->will_write(pg * P + 70, 50);
  CHECK(p->header()->hd_jr_entries == entries);
  p->will_write(pg * P + 200, 8);  // line 3: a new entry
  CHECK(p->header()->hd_jr_entries == entries + 1);
  d[200] = 2;
  uint64_t sp = p->savepoint();
  CHECK(!p->write_ready());
  p->will_write(pg * P + 100, 8);  // journaled again after the savepoint
  CHECK(p->header()->hd_jr_entries == entries + 2);
  d[100] = 3;
  p->rollback_to(sp);
  CHECK(d[100] == 2);
  p->will_write(pg * P + 100, 8);
  d[100] = 4;
  p->abort();
  CHECK(d[100] == 1 && d[200] == 1);
  p->begin();
  p->will_write(pg * P + 100, 8);
  d[100] = 5;
  p->commit();
  p->begin();
  p->will_write(pg * P + 100, 8);  // a new transaction journals again
  d[100] = 6;
  p->abort();
  CHECK(d[100] == 5);
  CHECK(code_of([&] { p->will_write(pg * P + 100, 8); }) == Code::TXN);
  p->begin();
  p->will_write(pg * P + 100, 8);
  p->close();
  CHECK(!p->write_ready());
  CHECK(code_of([&] { p->will_write(pg * P + 100, 8); }) == Code::CLOSED);
  ++g_passed;
}

// reclaim_fresh: only a run this transaction allocated since its latest savepoint and
// freed can be taken back before commit.
static void t_reclaim_fresh() {
  auto p = Pager::open(path("rf.persist"), OpenOptions{});
  p->begin();
  uint64_t old = p->alloc_pages(3);
  p->commit();
  uint64_t free_before = p->header()->hd_free_pages;
  p->begin();
  p->free_pages(old);
  CHECK(!p->reclaim_fresh(old, 3));  // live at begin(): must wait for commit (I7)
  uint64_t a = p->alloc_pages(4);
  CHECK(a != old);
  p->free_pages(a);
  CHECK(!p->reclaim_fresh(a, 5));  // wrong length: nothing changes
  CHECK(p->reclaim_fresh(a, 4));
  CHECK(!p->reclaim_fresh(a, 4));  // no longer freed
  CHECK(p->run_length(a) == 4);
  p->free_pages(a);  // freed again: fine
  CHECK(p->reclaim_fresh(a, 4));
  uint64_t b = p->alloc_pages(2);
  p->free_pages(b);
  uint64_t sp = p->savepoint();
  CHECK(!p->reclaim_fresh(b, 2));  // fresh before the savepoint only
  p->rollback_to(sp);
  p->commit();
  CHECK(p->run_length(a) == 4);        // reclaimed: still allocated after commit
  CHECK(p->run_start(b) == UINT64_MAX);  // freed at commit
  CHECK(p->run_start(old) == UINT64_MAX);
  CHECK(p->header()->hd_free_pages == free_before + 3 - 4);
  CHECK(p->check().empty());
  p->begin();
  uint64_t c = p->alloc_pages(2);
  p->free_pages(c);
  CHECK(p->reclaim_fresh(c, 2));
  p->abort();  // the allocation goes away with the transaction
  CHECK(p->run_start(c) == UINT64_MAX || c == a);
  CHECK(p->check().empty());
  ++g_passed;
}

// alloc_pages is first fit from hd_free_hint; the search reads the bitmap 64 pages at
// a time. Compare with a page-by-page reference over a fragmented map.
static void t_first_fit() {
  auto p = Pager::open(path("ff.persist"), OpenOptions{});
  std::vector<uint64_t> runs;
  uint32_t seed = 12345;
  auto rnd = [&](uint32_t n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
  };
  p->begin();
  for (int i = 0; i < 300; i++) runs.push_back(p->alloc_pages(1 + rnd(40)));
  p->commit();
  p->begin();
  for (uint64_t r : runs)
    if (rnd(3) == 0) p->free_pages(r);
  p->commit();
  for (uint64_t n : {1ull, 2ull, 7ull, 8ull, 9ull, 33ull, 63ull, 64ull, 65ull, 100ull, 130ull}) {
    p->begin();
    uint64_t count = p->header()->hd_page_count;
    uint64_t from = std::min<uint64_t>(p->header()->hd_free_hint, count), want = UINT64_MAX, run = 0;
    for (uint64_t q = from; q < count; q++) {
      run = p->page_allocated(q) ? 0 : run + 1;
      if (run == n) {
        want = q + 1 - n;
        break;
      }
    }
    uint64_t got = p->alloc_pages(n);
    p->abort();
    if (want != UINT64_MAX) CHECK(got == want);
    else CHECK(got >= from);
  }
  CHECK(p->check().empty());
  ++g_passed;
}

// First fit holds for every allocation of a long transaction (the search hints of
// I15 only skip what earlier searches proved holds no fit), across savepoint
// rollbacks (pages freed), growth, and frees committed by another handle.
static bool first_fit_ok(Pager& p, uint64_t from, uint64_t got, uint64_t n) {
  uint64_t run = 0;
  for (uint64_t q = from; q < got; q++) {
    run = p.page_allocated(q) ? 0 : run + 1;
    if (run >= n) return false;  // an earlier fit was skipped
  }
  return got == from || p.page_allocated(got - 1);  // else the fit could start lower
}

static void t_first_fit_hints() {
  auto a = Pager::open(path("ffh.persist"), OpenOptions{});
  uint32_t seed = 777;
  auto rnd = [&](uint32_t n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
  };
  std::vector<uint64_t> runs;
  a->begin();
  for (int i = 0; i < 400; i++) runs.push_back(a->alloc_pages(1 + rnd(40)));
  a->commit();
  a->begin();
  for (uint64_t& r : runs)
    if (rnd(3) == 0) a->free_pages(r), r = 0;
  a->commit();
  auto b = Pager::open(path("ffh.persist"), OpenOptions{});
  for (int round = 0; round < 3; round++) {
    a->begin();
    std::vector<uint64_t> sps;
    for (int i = 0; i < 300; i++) {
      uint64_t n = rnd(10) == 0 ? 65 + rnd(30) : 1 + rnd(24);  // mostly hinted sizes, some not
      uint64_t from = std::min(a->header()->hd_free_hint, a->header()->hd_page_count);
      uint64_t got = a->alloc_pages(n);
      if (!first_fit_ok(*a, from, got, n)) {
        std::fprintf(stderr, "  round %d, alloc %d of %llu pages at %llu: not first fit from %llu\n", round, i,
                     (unsigned long long)n, (unsigned long long)got, (unsigned long long)from);
        CHECK(false);
      }
      if (i % 40 == 10) sps.push_back(a->savepoint());
      if (i % 40 == 30) a->rollback_to(sps.back());  // frees the pages of the last 20 allocations
    }
    a->commit();
    CHECK(a->check().empty());
    b->begin();  // the other handle frees runs: a's next transaction must see the space
    for (uint64_t& r : runs)
      if (r != 0 && rnd(4) == 0) b->free_pages(r), r = 0;
    b->commit();
  }
  b->close();
  CHECK(a->check().empty());
  ++g_passed;
}

int main() {
  char tmpl[] = "/tmp/persist-native-XXXXXX";
  if (!mkdtemp(tmpl)) return 2;
  g_dir = tmpl;
  struct {
    const char* name;
    void (*fn)();
  } tests[] = {
      {"create_layout", t_create_layout},     {"alloc_free_extend", t_alloc_free_extend},
      {"abort_restores", t_abort_restores},   {"savepoints", t_savepoints},
      {"big_journal", t_big_journal},         {"dead_holder", t_dead_holder},
      {"bad_files", t_bad_files},             {"second_gib_range", t_second_gib_range},
      {"close_keep_range", t_close_keep_range}, {"recovery_idempotent", t_recovery_idempotent},
      {"alloc_while_journal_full", t_alloc_while_journal_full},
      {"write_cache", t_write_cache},         {"reclaim_fresh", t_reclaim_fresh},
      {"first_fit", t_first_fit},           {"first_fit_hints", t_first_fit_hints},
  };
  for (auto& t : tests) {
    int before = g_failed;
    try {
      t.fn();
    } catch (const Error& e) {
      std::fprintf(stderr, "  unexpected %s: %s\n", persist::error_code_name(e.code), e.what());
      ++g_failed;
    }
    std::printf("%s %s\n", g_failed == before ? "ok  " : "FAIL", t.name);
  }
  std::string rm = "rm -rf " + g_dir;
  if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", g_dir.c_str());
  std::printf("pager native: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
