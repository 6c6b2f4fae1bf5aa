#!/usr/bin/env node
// @persist/heap benchmark: `pnpm --filter @persist/heap bench [-- --quick]`.
//  1. builds native/bench/heap_bench.cc with plain cmake (-DPERSIST_BENCH=ON, Release,
//     into build-bench/) and runs it: heap vs glibc malloc/free in one binary, same
//     sequences, plus the fragmentation workload;
//  2. measures the same alloc+free pairs from JS, per call through the addon
//     (inside one transaction per 256 pairs, and each call in its own transaction).
//  3. with --peers: also runs the repo benchmark's heap workloads (bench/run.mjs --only
//     heap, side by side with the peers; its report is docs/benchmarks.md).
// Speed figures come from here (and the repo's bench/), never from tests.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openHeap } from '@persist/heap'

const pkg = dirname(dirname(fileURLToPath(import.meta.url)))
const quick = process.argv.includes('--quick')
const out = join(pkg, 'build-bench')
const dir = mkdtempSync(join(tmpdir(), 'persist-heap-bench-'))

process.stdout.write(
  `load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')} (figures are only comparable on an idle machine)\n\n`,
)
execFileSync('cmake', ['-S', pkg, '-B', out, '-DPERSIST_BENCH=ON', '-DCMAKE_BUILD_TYPE=Release'], {
  stdio: 'ignore',
})
execFileSync('cmake', ['--build', out, '-j2', '--target', 'heap_bench'], {
  stdio: ['ignore', 'ignore', 'inherit'],
})
execFileSync(join(out, 'heap_bench'), [...(quick ? ['--quick'] : []), '--dir', dir], { stdio: 'inherit' })

// ---- from JS ---------------------------------------------------------------------
const n = quick ? 100_000 : 1_000_000
const h = openHeap(join(dir, 'js.persist'))
const rows = []
for (const size of [16, 256, 4096, 65536]) {
  const m = size > 32768 ? n / 10 : n
  h.free(h.alloc(size))
  // process CPU time (µs), like the native part: stable on a shared machine
  const cpu = (c) => (c.user + c.system) * 1000
  let t0 = process.cpuUsage()
  for (let i = 0; i < m; i += 256) {
    h.transaction(() => {
      for (let j = 0; j < 256; j++) h.free(h.alloc(size))
    })
  }
  const inTxn = cpu(process.cpuUsage(t0)) / m
  const k = Math.floor(m / 10)
  t0 = process.cpuUsage()
  for (let i = 0; i < k; i++) h.free(h.alloc(size))
  const own = cpu(process.cpuUsage(t0)) / k / 2
  rows.push({ size, inTxn, own })
}
h.close()
process.stdout.write(
  '\nfrom JS (process CPU ns per alloc+free pair, transactions of 256 pairs; "own txn": ns per call, each call its own transaction)\n',
)
process.stdout.write(`${'size'.padEnd(10)}${'in txn'.padStart(10)}${'own txn'.padStart(10)}\n`)
for (const r of rows)
  process.stdout.write(
    `${String(r.size).padEnd(10)}${r.inTxn.toFixed(1).padStart(10)}${r.own.toFixed(1).padStart(10)}\n`,
  )
rmSync(dir, { recursive: true, force: true })

if (process.argv.includes('--peers')) {
  const run = fileURLToPath(new URL('../../../bench/run.mjs', import.meta.url))
  const rest = process.argv.slice(2).filter((a) => a !== '--peers')
  const r = spawnSync(process.execPath, [run, '--only', 'heap', ...rest], { stdio: 'inherit' })
  process.exitCode = r.status ?? 1
}
