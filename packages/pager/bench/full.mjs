#!/usr/bin/env node
// Durable commit of one 8-byte update (a counter increment), side by side in one run:
// the pager in durability 'full' vs better-sqlite3 (WAL, synchronous=FULL) vs lmdb
// (default: sync), with 1 and with 4 processes committing at once (group commit), on
// the real disk (os.tmpdir() unless --dir). Prints µs per commit (aggregate wall time
// ÷ commits), the ratio to SQLite, whether the final count is exact, and fsync-class
// calls per commit: for the pager counted in the timed race itself from its I/O trace
// (PERSIST_IO_TRACE: one append per write/sync, µs against ms syncs); for the peers
// with strace -f -c in a separate run of the same race (ptrace slows every call, so
// commits group less there; "-" without strace).
//
//   node bench/full.mjs [--n 300] [--dir D] [--procs 1,4] [--no-strace]
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

const self = fileURLToPath(import.meta.url)
const arg = (k, d) => {
  const i = process.argv.indexOf(k)
  return i >= 0 ? process.argv[i + 1] : d
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
      return { inc: () => inc.run(), read: () => get.get(), close: () => db.close() }
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
    for (const procs of procsList) {
      for (const impl of Object.keys(impls)) {
        const dir = mkdtempSync(join(root, `${impl}-${procs}-`))
        impls[impl].setup(dir)
        const trace = join(root, `trace-${procs}`)
        const r = await race(impl, dir, procs, n, null, impl === 'ours' ? { PERSIST_IO_TRACE: trace } : {})
        let syncs = null
        if (impl === 'ours') {
          // log syncs ('S' events on file 1) and commits returned ('C') in the timed race
          const tr = readFileSync(trace)
          let s = 0
          let c = 0
          for (let q = 0; q + 16 <= tr.length; q += 16 + tr.readUInt32LE(q + 4)) {
            if (tr[q] === 0x53 && tr[q + 1] === 1) s++
            if (tr[q] === 0x43) c++
          }
          syncs = s / c
        } else if (strace) {
          // fsync-class calls per commit: a second race under strace, minus opening and
          // closing (the same race with 0 increments)
          const d2 = mkdtempSync(join(root, `${impl}-${procs}-s-`))
          impls[impl].setup(d2)
          const f = join(root, `strace-${impl}-${procs}`)
          await race(impl, d2, procs, n, f)
          const withN = straceSyncs(f, procs)
          const d0 = mkdtempSync(join(root, `${impl}-${procs}-z-`))
          impls[impl].setup(d0)
          await race(impl, d0, procs, 0, `${f}z`)
          syncs = (withN - straceSyncs(`${f}z`, procs)) / (procs * n)
        }
        rows.push({ impl, procs, us: (r.ms * 1000) / (procs * n), exact: r.final === procs * n, syncs })
      }
    }
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
    console.log(`${n} increments per process, ${root.startsWith('/dev/shm') ? 'tmpfs' : root} (load ${load})`)
    console.log(
      `${'store'.padEnd(42)} ${'procs'.padStart(5)} ${'µs/commit'.padStart(10)} ${'vs sqlite'.padStart(9)} ${'exact'.padStart(5)} ${'syncs/commit'.padStart(12)}`,
    )
    for (const r of rows) {
      const sq = rows.find((x) => x.impl === 'sqlite' && x.procs === r.procs)
      console.log(
        `${impls[r.impl].label.padEnd(42)} ${String(r.procs).padStart(5)} ${r.us.toFixed(0).padStart(10)} ${`${(sq.us / r.us).toFixed(2)}×`.padStart(9)} ${(r.exact ? 'yes' : 'NO').padStart(5)} ${(r.syncs === null ? '-' : r.syncs.toFixed(2)).padStart(12)}`,
      )
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}
