// Workload 7: the heap's alloc/free against glibc malloc/free, natively, in one
// binary (bench/native/heap_bench.cc compiled here with the heap's and pager's C++
// sources), plus a fragmentation figure (peak footprint ÷ peak live bytes).
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadHeap } from '../lib/ours.mjs'
import { Result } from '../lib/result.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../..')
const firstLine = (e) =>
  String(e?.stderr ?? e?.message ?? e)
    .split('\n')
    .find((l) => l.trim()) ?? String(e)

function build(out, withPersist) {
  const args = ['-O2', '-std=c++17', '-DNDEBUG', `-DWITH_PERSIST=${withPersist ? 1 : 0}`, '-o', out]
  const src = [join(here, '../native/heap_bench.cc')]
  if (withPersist) {
    args.push(
      `-I${join(repo, 'packages/pager/include')}`,
      `-I${join(repo, 'packages/pager/native')}`,
      `-I${join(repo, 'packages/heap/native')}`,
    )
    src.push(join(repo, 'packages/pager/native/pager.cc'), join(repo, 'packages/heap/native/heap.cc'))
  }
  execFileSync('g++', [...args, ...src, '-lpthread'], { stdio: ['ignore', 'pipe', 'pipe'] })
}

export default {
  async run(ctx) {
    const res = new Result({
      id: 'heap',
      title: 'Heap: alloc/free vs glibc malloc/free (native)',
      description:
        'C++ loops in one binary (bench/native/heap_bench.cc), identical operation sequences for both allocators, timed in thread CPU time (kernel work for the thread included; comparable on a loaded machine), each test in 3 alternating rounds (glibc, persist, persist, glibc, …; the median of each): both allocators sample the same machine state, and both run warm (glibc in its arena, persist in its store) after the first round. ' +
        '"pair": alloc then free of one size, repeated; "mix": random alloc/free over 4,096 slots with uniform random sizes. ' +
        'The persist heap runs inside pager transactions of 256 operations (it requires one), journals the first byte of each block before touching it, and so includes the amortised begin/commit; glibc touches the same byte. ' +
        'Fragmentation: 8,192 slots, sizes 16 B–64 KiB, peak footprint (glibc: arena + mmapped, persist: heap pages × 4 KiB) ÷ peak live bytes.',
      columns: [],
      plot: {
        type: 'line',
        title: 'alloc+free pair (ns) vs block size',
        xTitle: 'block size (bytes, log)',
        yTitle: 'ns per alloc+free (log)',
      },
    })
    const heapSrc = join(repo, 'packages/heap/native/heap.cc')
    const bin = join(ctx.tmp, 'heap_bench')
    let withPersist = existsSync(heapSrc)
    let reason = withPersist ? null : 'not available yet: packages/heap/native/heap.cc does not exist'
    if (withPersist) {
      try {
        build(bin, true)
      } catch (e) {
        withPersist = false
        reason = `not available yet: the heap core does not build with bench/native/heap_bench.cc: ${firstLine(e)}`
      }
    }
    if (!withPersist) build(bin, false)
    let lines
    try {
      lines = execFileSync(bin, [ctx.tmp, ctx.quick ? '1' : '0'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    } catch (e) {
      if (!withPersist) throw e
      // Our side failed at run time: keep glibc's figures, report the error.
      reason = `error: heap_bench failed: ${firstLine(e)}`
      build(bin, false)
      lines = execFileSync(bin, [ctx.tmp, ctx.quick ? '1' : '0'], { encoding: 'utf8' })
      withPersist = false
    }
    const recs = lines
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
    const pairs = [...new Set(recs.filter((r) => r.test === 'pair').map((r) => r.size))]
    const mixes = [...new Set(recs.filter((r) => r.test === 'mix').map((r) => r.size))]
    const fmt = (n) => (n >= 1024 ? `${n / 1024} KiB` : `${n} B`)
    res.columns = [
      ...pairs.map((s) => ({ name: `pair ${fmt(s)}`, unit: 'ns', x: s })),
      ...mixes.map((s) => ({ name: `mix ${s}`, unit: 'ns' })),
      { name: 'fragmentation', unit: '×', ratio: false },
    ]
    res.summary = pairs.length // the small-size random mix
    for (const alloc of ['persist', 'glibc']) {
      const mine = recs.filter((r) => r.alloc === alloc)
      if (mine.length === 0) continue
      const frag = mine.find((r) => r.test === 'frag')
      res.row(
        alloc === 'glibc' ? 'glibc malloc/free' : 'persist heap (C++ core)',
        alloc === 'glibc' ? 'peer' : 'ours',
        [
          ...pairs.map((s) => mine.find((r) => r.test === 'pair' && r.size === s)?.ns ?? null),
          ...mixes.map((s) => mine.find((r) => r.test === 'mix' && r.size === s)?.ns ?? null),
          frag ? frag.peak_footprint / frag.peak_live : null,
        ],
      )
    }
    if (reason) res.skip('persist heap (C++ core)', reason)

    // From JS, per call, when the heap's JS API exists.
    const heap = await loadHeap()
    if (!heap.openHeap) res.skip('persist heap from JS (per call)', `not available yet: ${heap.reason}`)
    else {
      try {
        await jsRows(ctx, res, heap, pairs)
      } catch (e) {
        res.skip('persist heap from JS (per call)', `error: ${firstLine(e)}`)
        ctx.log('heap JS failed:', e?.stack ?? e)
      }
    }
    return res
  },
}

// alloc+free pairs called from JS: inside transactions of 256 pairs (as the native
// loop), and each pair in transactions of its own (the heap's implicit transaction).
async function jsRows(ctx, res, heap, pairs) {
  const h = heap.openHeap(join(ctx.tmp, 'heap-js.persist'))
  try {
    const batched = []
    const single = []
    const opt = ctx.quick ? { iterations: 1, time: 0, warmup: false } : { iterations: 5, time: 300 }
    for (const size of pairs) {
      const m = await ctx.measure(
        `js ${size}`,
        () => {
          h.pager.begin()
          for (let i = 0; i < 256; i++) h.free(h.alloc(size))
          h.pager.commit()
        },
        { ...opt, batch: ctx.quick ? 4 : 40 },
      )
      batched.push((m.us * 1000) / 256)
      const m2 = await ctx.measure(`js1 ${size}`, () => h.free(h.alloc(size)), {
        ...opt,
        batch: ctx.quick ? 100 : 5000,
      })
      single.push(m2.us * 1000)
    }
    const pad = res.columns.length - pairs.length
    res.row('persist heap from JS, transactions of 256 pairs', 'ours', [...batched, ...Array(pad).fill(null)])
    res.row(
      'persist heap from JS, one transaction per call',
      'ours',
      [...single, ...Array(pad).fill(null)],
      'alloc() and free() outside a transaction: each call takes the lock and commits (two transactions per pair)',
    )
  } finally {
    h.close()
  }
}
