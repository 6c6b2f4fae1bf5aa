// Counts fsync-class system calls (fsync, fdatasync, msync, sync_file_range) made
// by a child process, with `strace -f -c`. Returns null when strace is missing.
import { execFileSync, spawnSync } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, readSync, rmSync } from 'node:fs'
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
 * The log-sync counter of a 'full' store: wl_sync_seq (FORMAT.md, group-commit area:
 * page 0 offset 1024 + 100; bits 0-30 count the sync leaders' log syncs, bit 31 is the
 * sleepers' flag), read with pread from the page cache — so a race can be measured
 * without tracing (PERSIST_IO_TRACE costs a write(2) per I/O event, ~10 % of a commit
 * once syncs take ~0.2 ms). Take the difference of two reads while the store stays
 * open (a first opener re-initialises the lock area): `logSyncsBetween(a, b)`.
 */
export function logSyncCount(storeFile) {
  const fd = openSync(storeFile, 'r')
  try {
    const b = Buffer.alloc(4)
    readSync(fd, b, 0, 4, 1124)
    return b.readUInt32LE(0) & 0x7fffffff
  } finally {
    closeSync(fd)
  }
}
export const logSyncsBetween = (a, b) => (b - a + 0x80000000) % 0x80000000
