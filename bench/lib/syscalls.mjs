// Counts fsync-class system calls (fsync, fdatasync, msync, sync_file_range) made
// by a child process, with `strace -f -c`. Returns null when strace is missing.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'

let hasStrace
export function straceAvailable() {
  if (hasStrace === undefined) {
    try {
      execFileSync('strace', ['-V'], { stdio: 'ignore' })
      hasStrace = true
    } catch {
      hasStrace = false
    }
  }
  return hasStrace
}

const SYNC_CALLS = ['fsync', 'fdatasync', 'msync', 'sync_file_range']

/** Sync-class calls made by `node script ...args` (null without strace). */
export function countSyncCalls(script, args, tmp) {
  if (!straceAvailable()) return null
  const out = join(tmp, `strace-${process.pid}-${Date.now()}.txt`)
  const r = spawnSync(
    'strace',
    ['-f', '-c', '-e', `trace=${SYNC_CALLS.join(',')}`, '-o', out, process.execPath, script, ...args],
    {
      encoding: 'utf8',
    },
  )
  if (r.status !== 0)
    throw new Error(`strace child failed: ${(r.stderr || '').split('\n').find((l) => l.trim())}`)
  let calls = 0
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/)
    if (SYNC_CALLS.includes(f.at(-1)) && /^\d+$/.test(f[3])) calls += Number(f[3])
  }
  rmSync(out, { force: true })
  return calls
}

/** Sync-class calls per commit: (calls with n commits − calls with 0) ÷ n. */
export function syncCallsPerCommit(script, impl, n, tmp) {
  if (!straceAvailable()) return null
  const run = (k) => {
    const dir = join(tmp, `sync-${impl}-${k}`)
    mkdirSync(dir, { recursive: true })
    try {
      return countSyncCalls(script, [impl, dir, String(k)], tmp)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return (run(n) - run(0)) / n
}

/**
 * Log syncs per returned commit from a PERSIST_IO_TRACE file of the pager ('full'
 * mode; every process of a race appends to the same file): 'S' events on file 1 (the
 * log) ÷ 'C' events. Includes the few syncs of opening (recovery) and closing (the last
 * closer's checkpoint). Null if the trace is missing or has no commit.
 */
export function traceSyncsPerCommit(file) {
  let tr
  try {
    tr = readFileSync(file)
  } catch {
    return null
  }
  let syncs = 0
  let commits = 0
  for (let q = 0; q + 16 <= tr.length; q += 16 + tr.readUInt32LE(q + 4)) {
    if (tr[q] === 0x53 && tr[q + 1] === 1) syncs++
    if (tr[q] === 0x43) commits++
  }
  return commits ? syncs / commits : null
}
