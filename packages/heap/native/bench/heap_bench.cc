// heap_bench.cc — the heap against glibc malloc/free, in one binary, same sequences.
//
//   build: cmake -S packages/heap -B build-bench -DPERSIST_BENCH=ON && cmake --build build-bench
//   run:   build-bench/heap_bench [--quick] [--dir DIR]   (or: pnpm --filter @persist/heap bench)
//
// Workloads (sizes 16 B – 64 KiB):
//   pairs   alloc(size) then free it, repeated: the fast path of both allocators.
//   mix     a table of 1024 slots; each step picks a slot at random and frees its
//           block or allocates a new one (size log-uniform over the range).
//   frag    fragmentation: grows to ~48 MiB of live data with random sizes, then churns
//           (free a random block, allocate a random size) for several rounds; reports
//           peak heap pages * 4096 / peak live bytes (requested and usable bytes), and
//           the file's peak size over peak requested bytes.
// Heap operations run inside transactions of `batch` operations (commit, begin again),
// which is how a user doing many allocations would run them; the cost of begin+commit
// is amortised and reported separately ("txn" rows: one alloc+free per transaction).
// Times are ns per operation (an alloc+free pair counts as one op in "pairs").
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "heap.h"

using namespace persist;
// Thread CPU time, not wall time: on a shared machine a descheduled thread would
// otherwise count other processes' work. Both allocators are measured the same way.
struct Clock {
  using time_point = double;  // ns
  static double now() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
  }
};

static inline void escape(void* p) { asm volatile("" : : "g"(p) : "memory"); }

static double ns_since(Clock::time_point t0, uint64_t ops) { return (Clock::now() - t0) / double(ops); }

struct Store {
  std::string path;
  std::unique_ptr<Pager> pager;
  std::unique_ptr<Heap> heap;
  explicit Store(const std::string& p) : path(p) {
    ::unlink(path.c_str());
    pager = Pager::open(path, OpenOptions());
    heap = std::make_unique<Heap>(*pager);
    pager->begin();
    heap->init();
    pager->commit();
  }
  ~Store() {
    heap.reset();
    pager->close();
    ::unlink(path.c_str());
  }
};

static constexpr uint32_t kBatch = 256;  // heap operations per transaction

static double heap_pairs(Store& s, uint64_t size, uint64_t n) {
  Heap& h = *s.heap;
  Pager& p = *s.pager;
  p.begin();
  h.free(h.alloc(size));  // warm: the slab exists
  p.commit();
  auto t0 = Clock::now();
  p.begin();
  for (uint64_t i = 0; i < n; i++) {
    uint64_t off = h.alloc(size);
    h.free(off);
    if ((i + 1) % kBatch == 0) {
      p.commit();
      p.begin();
    }
  }
  p.commit();
  return ns_since(t0, n);
}

static double heap_pairs_txn(Store& s, uint64_t size, uint64_t n) {
  Heap& h = *s.heap;
  Pager& p = *s.pager;
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; i++) {
    p.begin();
    h.free(h.alloc(size));
    p.commit();
  }
  return ns_since(t0, n);
}

static double malloc_pairs(uint64_t size, uint64_t n) {
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; i++) {
    void* q = std::malloc(size);
    escape(q);
    std::free(q);
  }
  return ns_since(t0, n);
}

// The same random sequence for both allocators: op i frees slot k if full, else allocates sizes[i].
struct MixPlan {
  std::vector<uint32_t> slot;
  std::vector<uint32_t> size;
};
static MixPlan make_plan(uint64_t n, uint32_t lo, uint32_t hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<uint32_t> slot(0, 1023);
  std::uniform_real_distribution<double> u(std::log(double(lo)), std::log(double(hi)));
  MixPlan p;
  p.slot.resize(n);
  p.size.resize(n);
  for (uint64_t i = 0; i < n; i++) {
    p.slot[i] = slot(rng);
    p.size[i] = uint32_t(std::exp(u(rng)));
  }
  return p;
}

static double heap_mix(Store& s, const MixPlan& plan) {
  Heap& h = *s.heap;
  Pager& p = *s.pager;
  std::vector<uint64_t> slots(1024, 0);
  auto t0 = Clock::now();
  p.begin();
  for (size_t i = 0; i < plan.slot.size(); i++) {
    uint64_t& sl = slots[plan.slot[i]];
    if (sl) {
      h.free(sl);
      sl = 0;
    } else {
      sl = h.alloc(plan.size[i]);
    }
    if ((i + 1) % kBatch == 0) {
      p.commit();
      p.begin();
    }
  }
  for (uint64_t& sl : slots)
    if (sl) h.free(sl);
  p.commit();
  return ns_since(t0, plan.slot.size());
}

static double malloc_mix(const MixPlan& plan) {
  std::vector<void*> slots(1024, nullptr);
  auto t0 = Clock::now();
  for (size_t i = 0; i < plan.slot.size(); i++) {
    void*& sl = slots[plan.slot[i]];
    if (sl) {
      std::free(sl);
      sl = nullptr;
    } else {
      sl = std::malloc(plan.size[i]);
      escape(sl);
    }
  }
  for (void*& sl : slots) std::free(sl);
  return ns_since(t0, plan.slot.size());
}

struct FragResult {
  double heap_over_usable, heap_over_requested, file_over_requested;
  uint64_t peak_requested;
};

static FragResult frag(Store& s, uint64_t target_bytes, int rounds, uint32_t seed) {
  Heap& h = *s.heap;
  Pager& p = *s.pager;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(std::log(16.0), std::log(65536.0));
  struct B {
    uint64_t off, size, usable;
  };
  std::vector<B> live;
  uint64_t requested = 0, usable = 0, peak_req = 0, peak_usable = 0, peak_heap = 0, peak_file = 0;
  // Sampled at each peak of live data (after a refill); the meta counters give the
  // heap's pages without a walk.
  auto sample = [&] {
    const pst_heap_meta* m = reinterpret_cast<const pst_heap_meta*>(p.base() + p.slot(0) * PST_PAGE_SIZE);
    uint64_t heap_pages = 1 + m->hp_slab_pages + m->hp_large_pages;
    peak_heap = std::max(peak_heap, heap_pages * PST_PAGE_SIZE);
    peak_usable = std::max(peak_usable, usable);
    peak_req = std::max(peak_req, requested);
    peak_file = std::max(peak_file, p.header()->hd_page_count * PST_PAGE_SIZE);
  };
  auto add = [&](uint64_t size) {
    uint64_t off = h.alloc(size);
    uint64_t us = h.usable_size(off);
    live.push_back({off, size, us});
    requested += size;
    usable += us;
  };
  uint64_t ops = 0;
  auto step = [&] {
    if (++ops % kBatch == 0) {
      p.commit();
      p.begin();
    }
  };
  p.begin();
  // grow to the target
  while (requested < target_bytes) {
    add(uint64_t(std::exp(u(rng))));
    step();
  }
  sample();
  // churn: free a random half, refill to the target; repeat
  for (int r = 0; r < rounds; r++) {
    for (size_t k = live.size() / 2; k > 0; k--) {
      size_t i = rng() % live.size();
      h.free(live[i].off);
      requested -= live[i].size;
      usable -= live[i].usable;
      live[i] = live.back();
      live.pop_back();
      step();
    }
    while (requested < target_bytes) {
      add(uint64_t(std::exp(u(rng))));
      step();
    }
    sample();
  }
  p.commit();
  auto problems = h.check();
  if (!problems.empty()) std::fprintf(stderr, "frag: check() found %zu problems: %s\n", problems.size(), problems[0].c_str());
  p.begin();
  for (B& b : live) h.free(b.off);
  p.commit();
  return FragResult{double(peak_heap) / double(peak_usable), double(peak_heap) / double(peak_req),
                    double(peak_file) / double(peak_req), peak_req};
}

int main(int argc, char** argv) {
  bool quick = false;
  std::string dir = "/tmp";
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
  }
  const uint64_t n = quick ? 200000 : 2000000;
  std::string path = dir + "/heap-bench-" + std::to_string(::getpid()) + ".persist";
  std::printf("@persist/heap native benchmark (%s; thread CPU ns per op, median of 3; transactions of %u ops)\n\n",
              quick ? "quick" : "full", kBatch);
  auto med3 = [](auto fn) {
    double a = fn(), b = fn(), c = fn();
    return std::max(std::min(a, b), std::min(std::max(a, b), c));
  };
  std::printf("%-26s %10s %10s %8s\n", "workload", "heap", "glibc", "ratio");
  double worst = 0;
  {
    Store s(path);
    for (uint64_t size : {16u, 64u, 256u, 1024u, 4096u, 16384u, 32768u, 65536u}) {
      double hp = med3([&] { return heap_pairs(s, size, size > 32768 ? n / 10 : n); });
      double mp = med3([&] { return malloc_pairs(size, n); });
      worst = std::max(worst, hp / mp);
      std::printf("pairs %-20llu %10.1f %10.1f %7.2fx\n", (unsigned long long)size, hp, mp, hp / mp);
    }
    double ht = med3([&] { return heap_pairs_txn(s, 64, n / 10); });
    std::printf("%-26s %10.1f %10s %8s\n", "pairs 64, 1 txn per pair", ht, "-", "-");
  }
  for (auto [lo, hi] : {std::pair<uint32_t, uint32_t>{16, 256}, {16, 4096}, {16, 65536}}) {
    MixPlan plan = make_plan(n, lo, hi, 1234);
    Store s(path);
    double hm = med3([&] { return heap_mix(s, plan); });
    double mm = med3([&] { return malloc_mix(plan); });
    worst = std::max(worst, hm / mm);
    char name[64];
    std::snprintf(name, sizeof name, "mix %u-%u", lo, hi);
    std::printf("%-26s %10.1f %10.1f %7.2fx\n", name, hm, mm, hm / mm);
  }
  std::printf("\nworst heap/glibc ratio: %.2fx (target <= 2x)\n\n", worst);
  {
    Store s(path);
    FragResult f = frag(s, quick ? (8ull << 20) : (48ull << 20), quick ? 3 : 6, 99);
    std::printf("fragmentation (16 B - 64 KiB log-uniform, %.0f MiB peak live, churn):\n",
                double(f.peak_requested) / (1 << 20));
    std::printf("  peak heap pages * 4096 / peak usable bytes   %.3f\n", f.heap_over_usable);
    std::printf("  peak heap pages * 4096 / peak requested bytes %.3f (target <= 1.3)\n", f.heap_over_requested);
    std::printf("  peak file size / peak requested bytes         %.3f\n", f.file_over_requested);
  }
  return 0;
}
