#!/usr/bin/env node
// Durable commit of one 8-byte update (a counter increment), side by side in one run:
// the pager in durability 'full' vs better-sqlite3 (WAL, synchronous=FULL) vs lmdb
// (default: sync), with 1 and with 4 processes committing at once (group commit), on
// the real disk (os.tmpdir() unless --dir). Prints µs per commit (aggregate wall time
// ÷ commits), the ratio to SQLite, whether the final count is exact, and fsync-class
// calls per commit: for the pager the log syncs of the timed race itself, from the
// store's sync counter (wl_sync_seq, FORMAT.md; no tracing in the timed race: the I/O
// trace costs a write(2) per event, ~10 % of a commit once syncs take ~0.2 ms); for the peers
// with strace -f -c in a separate run of the same race (ptrace slows every call, so
// commits group less there; "-" without strace).
//
// Every store is warmed up before each race (1,100 commits, counter reset) and kept
// open by the parent during it: a fresh SQLite WAL grows on every commit (a size change
// to sync each time) until its first auto-checkpoint, unlike a running application's,
// and SQLite deletes the WAL when its last connection closes.
//
// The disk's sync latency drifts by 2-5x within minutes on a shared machine, so the
// stores are measured in interleaved rounds (each round runs every store once, in a
// rotating order) and the table shows the median round per store, the spread (min-max)
// and the median of the per-round ratios to SQLite (each ratio taken from races run
// seconds apart).
//
//   node bench/full.mjs [--n 300] [--rounds 5] [--dir D] [--procs 1,4] [--no-strace]
//
// The peers are loaded from the repository's bench/ package (its dependencies), so
// the pager itself does not depend on them.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openPager, PAGE_SIZE } from '@persist/pager'
// the repository's bench/ (peers and helpers; the pager itself does not depend on them)
import { logSyncCount, logSyncsBetween } from '../../../bench/lib/syscalls.mjs'

const self = fileURLToPath(import.meta.url)
const arg = (k, d) => {
  const i = process.argv.indexOf(k)
  return i >= 0 ? process.argv[i + 1] : d
}
/** Setup + 1,100 committed increments, then the counter back to 0: every store starts
 * the race warm (SQLite past its 1,000-page auto-checkpoint, so its WAL is reused in
 * place as in a long-running application instead of growing on every commit). Returns
 * the open handle: the caller closes it after the race (SQLite deletes the WAL when
 * its last connection closes). */
function prepare(impl, dir) {
  impls[impl].setup(dir)
  const s = impls[impl].open(dir)
  for (let i = 0; i < 1100; i++) s.inc()
  s.reset()
  return s
}
const median = (xs) => {
  const a = [...xs].sort((x, y) => x - y)
  const m = a.length >> 1
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2
}
const peers = () => createRequire(join(dirname(self), '../../../bench/package.json'))
// ---------------------------------------------------------------- the three stores
const impls = {
  ours: {
    label: "pager 'full' (begin, willWrite 8, commit)",
    setup(dir) {
      const p = openPager(join(dir, 'c.persist'), { durability: 'full' })
      p.transaction(() => p.setSlot(1, p.allocPages(1)))
      p.close()
    },
    open(dir) {
      const p = openPager(join(dir, 'c.persist'), { durability: 'full' })
      p.begin()
      const off = p.slot(1) * PAGE_SIZE
      p.commit()
      return {
        inc() {
          p.begin()
          p.willWrite(off, 8)
          p.mem.setU64(off, p.mem.u64(off) + 1)
          p.commit()
        },
        read() {
          p.begin()
          const v = p.mem.u64(off)
          p.commit()
          return v
        },
        reset() {
          p.begin()
          p.willWrite(off, 8)
          p.mem.setU64(off, 0)
          p.commit()
        },
        close: () => p.close(),
      }
    },
  },
  sqlite: {
    label: 'better-sqlite3 (WAL, synchronous=FULL)',
    db(dir) {
      const Database = peers()('better-sqlite3')
      const db = new Database(join(dir, 'c.sqlite'))
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = FULL')
      db.pragma('busy_timeout = 30000')
      return db
    },
    setup(dir) {
      const db = this.db(dir)
      db.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO kv VALUES ('x', 0)")
      db.close()
    },
    open(dir) {
      const db = this.db(dir)
      const inc = db.prepare("UPDATE kv SET v = v + 1 WHERE k = 'x'")
      const get = db.prepare("SELECT v FROM kv WHERE k = 'x'").pluck()
      const zero = db.prepare("UPDATE kv SET v = 0 WHERE k = 'x'")
      return { inc: () => inc.run(), read: () => get.get(), reset: () => zero.run(), close: () => db.close() }
    },
  },
  lmdb: {
    label: 'lmdb (default: sync)',
    db(dir) {
      return peers()('lmdb').open({ path: join(dir, 'c.lmdb') })
    },
    setup(dir) {
      const db = this.db(dir)
      db.putSync('x', 0)
      db.close()
    },
    open(dir) {
      const db = this.db(dir)
      return {
        inc: () => db.transactionSync(() => db.putSync('x', db.get('x') + 1)),
        read: () => db.get('x'),
        reset: () => db.putSync('x', 0),
        close: () => db.close(),
      }
    },
  },
}

// ---------------------------------------------------------------- child: one committer
async function child(impl, dir, n) {
  const s = impls[impl].open(dir)
  process.stdout.write('ready\n')
  await new Promise((r) => process.stdin.once('data', r)) // "go"
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) s.inc()
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n
  const value = s.read()
  s.close()
  process.stdout.write(`${JSON.stringify({ us, value: Number(value) })}\n`)
}

// ---------------------------------------------------------------- parent
/** procs processes × n increments from "go" until all are done; optionally under strace. */
async function race(impl, dir, procs, n, straceOut, env = {}) {
  const kids = []
  for (let i = 0; i < procs; i++) {
    const cmd = [self, '--child', impl, dir, String(n)]
    const c = straceOut
      ? spawn(
          'strace',
          [
            '-f',
            '-c',
            '-e',
            'trace=fsync,fdatasync,msync,sync_file_range',
            '-o',
            `${straceOut}.${i}`,
            process.execPath,
            ...cmd,
          ],
          { stdio: ['pipe', 'pipe', 'inherit'] },
        )
      : spawn(process.execPath, cmd, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } })
    let out = ''
    const ready = new Promise((resolve) => {
      c.stdout.on('data', (d) => {
        out += d
        if (out.includes('ready\n')) resolve()
      })
    })
    const done = new Promise((resolve, reject) =>
      c.on('exit', (code) =>
        code === 0
          ? resolve(JSON.parse(out.split('\n').filter(Boolean).at(-1)))
          : reject(new Error(`${impl} child exited ${code}`)),
      ),
    )
    kids.push({ c, ready, done })
  }
  await Promise.all(kids.map((k) => k.ready))
  const t0 = process.hrtime.bigint()
  for (const k of kids) k.c.stdin.end('go\n')
  const res = await Promise.all(kids.map((k) => k.done))
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  return { ms, final: Math.max(...res.map((r) => r.value)) }
}

function straceSyncs(file, procs) {
  let calls = 0
  for (let i = 0; i < procs; i++) {
    for (const line of readFileSync(`${file}.${i}`, 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/)
      if (/^(fsync|fdatasync|msync|sync_file_range)$/.test(f.at(-1) ?? '') && /^\d+$/.test(f[3]))
        calls += Number(f[3])
    }
  }
  return calls
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4], Number(process.argv[5]))
} else {
  const n = Number(arg('--n', '300'))
  const rounds = Math.max(1, Number(arg('--rounds', '5')))
  const procsList = arg('--procs', '1,4').split(',').map(Number)
  let strace = !process.argv.includes('--no-strace')
  if (strace) {
    try {
      execFileSync('strace', ['-V'], { stdio: 'ignore' })
    } catch {
      strace = false
    }
  }
  const root = mkdtempSync(join(arg('--dir', tmpdir()), 'persist-bench-full-'))
  const rows = []
  try {
    const names = Object.keys(impls)
    for (const procs of procsList) {
      const got = Object.fromEntries(names.map((k) => [k, []]))
      let exact = true
      for (let round = 0; round < rounds; round++) {
        for (let j = 0; j < names.length; j++) {
          const impl = names[(round + j) % names.length] // rotating order
          const dir = mkdtempSync(join(root, `${impl}-${procs}-${round}-`))
          const held = prepare(impl, dir)
          const s0 = impl === 'ours' ? logSyncCount(join(dir, 'c.persist')) : 0
          const r = await race(impl, dir, procs, n, null)
          const row = { us: (r.ms * 1000) / (procs * n), syncs: null }
          // log syncs of the race (held keeps the store open: the lock area is not reset)
          if (impl === 'ours')
            row.syncs = logSyncsBetween(s0, logSyncCount(join(dir, 'c.persist'))) / (procs * n)
          held.close()
          exact &&= r.final === procs * n
          got[impl].push(row)
          rmSync(dir, { recursive: true, force: true })
        }
      }
      for (const impl of names) {
        let syncs = median(got[impl].map((x) => x.syncs ?? 0))
        if (impl !== 'ours') syncs = null
        if (impl !== 'ours' && strace) {
          // fsync-class calls per commit: a race under strace, minus opening and closing
          // (the same race with 0 increments)
          const d2 = mkdtempSync(join(root, `${impl}-${procs}-s-`))
          const h2 = prepare(impl, d2)
          const f = join(root, `strace-${impl}-${procs}`)
          await race(impl, d2, procs, n, f)
          h2.close()
          const withN = straceSyncs(f, procs)
          const d0 = mkdtempSync(join(root, `${impl}-${procs}-z-`))
          const h0 = prepare(impl, d0)
          await race(impl, d0, procs, 0, `${f}z`)
          h0.close()
          syncs = (withN - straceSyncs(`${f}z`, procs)) / (procs * n)
        }
        const us = got[impl].map((x) => x.us)
        const ratio = median(us.map((u, i) => got.sqlite[i].us / u))
        rows.push({
          impl,
          procs,
          us: median(us),
          min: Math.min(...us),
          max: Math.max(...us),
          ratio,
          exact,
          syncs,
        })
      }
    }
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
    console.log(
      `${n} increments per process, ${rounds} interleaved rounds, ${root.startsWith('/dev/shm') ? 'tmpfs' : root} (load ${load})`,
    )
    console.log(
      `${'store'.padEnd(42)} ${'procs'.padStart(5)} ${'µs/commit'.padStart(10)} ${'min-max'.padStart(11)} ${'vs sqlite'.padStart(9)} ${'exact'.padStart(5)} ${'syncs/commit'.padStart(12)}`,
    )
    for (const r of rows) {
      console.log(
        `${impls[r.impl].label.padEnd(42)} ${String(r.procs).padStart(5)} ${r.us.toFixed(0).padStart(10)} ${`${r.min.toFixed(0)}-${r.max.toFixed(0)}`.padStart(11)} ${`${r.ratio.toFixed(2)}×`.padStart(9)} ${(r.exact ? 'yes' : 'NO').padStart(5)} ${(r.syncs === null ? '-' : r.syncs.toFixed(2)).padStart(12)}`,
      )
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}
