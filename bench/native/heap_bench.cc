// heap_bench.cc — the native side of the heap workload: the same loops against
// glibc malloc/free and (when built with -DWITH_PERSIST=1) the persist heap core
// (packages/heap/native/heap.cc over packages/pager/native/pager.cc), in one
// binary, so both run on the same machine in the same process.
//
// Usage: heap_bench <dir> <quick 0|1>
// Prints one JSON object per line:
//   {"alloc":"glibc"|"persist","test":"pair"|"mix","size":N,"ns":per-op}
//   {"alloc":...,"test":"frag","peak_live":bytes,"peak_footprint":bytes}
//
// Invariants of the measurement (why the numbers are comparable):
//  B1  both allocators run the identical operation sequence (same PRNG seed);
//  B2  persist operations run inside pager transactions of kBatch operations each,
//      so the figure includes the amortised cost of begin/commit (the heap demands
//      a transaction; one per operation would measure the pager, not the heap);
//  B3  every returned block is touched (first byte written) so no allocator can
//      hand out untouched address space for free — persist journals that byte first;
//  B4  times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), kernel work done
//      for it included (page faults, fallocate, mmap): on a shared machine wall time
//      would charge each allocator with whatever else ran meanwhile;
//  B5  each test runs in alternating rounds (glibc, persist, persist, glibc, ...), and
//      each figure is the median of its rounds.
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#if WITH_PERSIST
#include "heap.h"
#endif

namespace {

constexpr int kBatch = 256;  // operations per persist transaction (B2)
volatile uintptr_t g_sink;   // defeats malloc/free elision

struct Glibc {
  static const char* name() { return "glibc"; }
  uint64_t alloc(uint64_t n) {
    auto* p = static_cast<uint8_t*>(std::malloc(n));
    p[0] = 1;  // B3
    g_sink = reinterpret_cast<uintptr_t>(p);
    return reinterpret_cast<uint64_t>(p);
  }
  void free(uint64_t p) { std::free(reinterpret_cast<void*>(p)); }
  void begin() {}
  void commit() {}
  uint64_t footprint() {
    struct mallinfo2 mi = mallinfo2();
    return mi.arena + mi.hblkhd;
  }
};

#if WITH_PERSIST
struct Persist {
  std::unique_ptr<persist::Pager> pager;
  std::unique_ptr<persist::Heap> heap;
  uint8_t* base = nullptr;
  static const char* name() { return "persist"; }
  explicit Persist(const std::string& path) {
    ::unlink(path.c_str());
    persist::OpenOptions o;
    o.max_size = 16ull << 30;
    pager = persist::Pager::open(path, o);
    heap = std::make_unique<persist::Heap>(*pager);
    pager->begin();
    heap->init();
    pager->commit();
    base = pager->base();  // stable for the pager's life (pager I1), as a user would keep it
  }
  ~Persist() {
    heap.reset();
    pager->close();
  }
  uint64_t alloc(uint64_t n) {
    uint64_t off = heap->alloc(n);
    pager->will_write(off, 1);  // B3
    base[off] = 1;
    g_sink = off;
    return off;
  }
  void free(uint64_t off) { heap->free(off); }
  void begin() { pager->begin(); }
  void commit() { pager->commit(); }
  uint64_t footprint() { return heap->stats().heap_pages * 4096ull; }
};
#endif

double now_ns() {  // B4
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

// alloc+free of one size, repeated: ns per pair.
template <class A>
double pair_test(A& a, uint64_t size, int n) {
  auto run = [&](int count) {
    for (int i = 0; i < count; i += kBatch) {
      a.begin();
      for (int j = 0; j < kBatch; j++) a.free(a.alloc(size));
      a.commit();
    }
  };
  run(n / 10 + kBatch);  // warm up
  double t0 = now_ns();
  run(n);
  return (now_ns() - t0) / n;
}

// Random alloc/free over a table of slots, sizes uniform in [lo, hi]: ns per operation.
template <class A>
double mix_test(A& a, uint64_t lo, uint64_t hi, int n, int slots, const char* label, bool frag) {
  std::mt19937_64 rng(12345);  // B1
  std::vector<uint64_t> blk(slots, 0), len(slots, 0);
  uint64_t live = 0, peak_live = 0, peak_fp = 0;
  double t0 = now_ns();
  for (int i = 0; i < n; i += kBatch) {
    a.begin();
    for (int j = 0; j < kBatch; j++) {
      int s = int(rng() % slots);
      if (blk[s]) {
        a.free(blk[s]);
        live -= len[s];
        blk[s] = 0;
      } else {
        uint64_t sz = lo + rng() % (hi - lo + 1);
        blk[s] = a.alloc(sz);
        len[s] = sz;
        live += sz;
        if (live > peak_live) peak_live = live;
      }
    }
    a.commit();
    if (frag) {  // every batch: the peak footprint must not be missed
      uint64_t fp = a.footprint();
      if (fp > peak_fp) peak_fp = fp;
    }
  }
  double ns = (now_ns() - t0) / n;
  if (frag) {
    std::printf("{\"alloc\":\"%s\",\"test\":\"frag\",\"peak_live\":%llu,\"peak_footprint\":%llu,\"ns\":%.2f}\n", A::name(),
                (unsigned long long)peak_live, (unsigned long long)peak_fp, ns);
  }
  (void)label;
  a.begin();
  for (int s = 0; s < slots; s++)
    if (blk[s]) a.free(blk[s]);
  a.commit();
  return ns;
}

// B5: each test runs R times per allocator in alternating order (glibc, persist,
// persist, glibc, ...) and each row is the median: the machine's state drifts between
// seconds-apart runs, so both allocators sample the same conditions.
template <class Run>
void rounds(int R, const char* test, const std::string& size_json, Run run) {
  std::vector<double> g, p;
  for (int r = 0; r < R; r++) {
    bool glibc_first = r % 2 == 0;
    if (glibc_first) g.push_back(run(0));
#if WITH_PERSIST
    p.push_back(run(1));
#endif
    if (!glibc_first) g.push_back(run(0));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  std::printf("{\"alloc\":\"glibc\",\"test\":\"%s\",\"size\":%s,\"ns\":%.2f,\"rounds\":%d}\n", test,
              size_json.c_str(), median(g), R);
  if (!p.empty())
    std::printf("{\"alloc\":\"persist\",\"test\":\"%s\",\"size\":%s,\"ns\":%.2f,\"rounds\":%d}\n", test,
                size_json.c_str(), median(p), R);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: heap_bench <dir> <quick 0|1>\n");
    return 2;
  }
  std::string dir = argv[1];
  bool quick = std::atoi(argv[2]) != 0;
  int fragN = quick ? 4000 : 200000;
  int fragSlots = quick ? 512 : 8192;
  try {
    {
      const int n = quick ? 20000 : 500000;
      const int R = quick ? 1 : 3;
      Glibc g;
#if WITH_PERSIST
      Persist p(dir + "/heap-bench.persist");
#endif
      // which: 0 glibc, 1 persist
      auto pick = [&](int which, auto&& fn) -> double {
#if WITH_PERSIST
        if (which) return fn(p);
#endif
        (void)which;
        return fn(g);
      };
      for (uint64_t size : {16, 64, 256, 1024, 4096, 16384, 65536})
        rounds(R, "pair", std::to_string(size), [&](int w) {
          return pick(w, [&](auto& a) { return pair_test(a, size, size >= 16384 ? n / 10 : n); });
        });
      rounds(R, "mix", "\"16 B–256 B\"", [&](int w) {
        return pick(w, [&](auto& a) { return mix_test(a, 16, 256, n, 4096, "16 B–256 B", false); });
      });
      rounds(R, "mix", "\"16 B–64 KiB\"", [&](int w) {
        return pick(w, [&](auto& a) { return mix_test(a, 16, 65536, n / 8, quick ? 512 : 4096, "16 B–64 KiB", false); });
      });
    }
    // Fragmentation last, each in a fresh state (glibc: this process's arena is
    // already warm, so its footprint is an underestimate of a fresh process's).
    {
      Glibc g;
      mix_test(g, 16, 65536, fragN, fragSlots, "frag", true);
    }
#if WITH_PERSIST
    {
      Persist p(dir + "/heap-frag.persist");
      mix_test(p, 16, 65536, fragN, fragSlots, "frag", true);
    }
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "heap_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
