#!/usr/bin/env node
// The @persist/objects benchmarks: the workloads of bench/ that exercise this layer,
// run side by side with the peers (lmdb, better-sqlite3, classic-level, …).
// Extra arguments pass through (e.g. --quick, --out <dir>). The full report of
// every layer is docs/benchmarks.md, written by `pnpm bench` at the repo root.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const run = fileURLToPath(new URL('../../../bench/run.mjs', import.meta.url))
const r = spawnSync(process.execPath, [run, '--only', 'objects', ...process.argv.slice(2)], {
  stdio: 'inherit',
})
process.exit(r.status ?? 1)
