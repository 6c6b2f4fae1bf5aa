#!/usr/bin/env node
// Durable commit of one 8-byte update (a counter increment) in durability 'full'
// vs 'process', on the real disk (os.tmpdir() unless --dir), and 4 processes
// committing at once. Prints µs/op and syncs per commit (counted from the pager's
// I/O trace, PERSIST_IO_TRACE, in a separate run of the same loop).
//
//   node bench/full.mjs [--n 2000] [--dir D]
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openPager, PAGE_SIZE } from '@persist/pager'

const arg = (k, d) => {
  const i = process.argv.indexOf(k)
  return i >= 0 ? process.argv[i + 1] : d
}
const self = fileURLToPath(import.meta.url)

function loop(path, durability, n) {
  const p = openPager(path, { durability })
  p.begin()
  if (p.slot(1) === 0) p.setSlot(1, p.allocPages(1))
  const off = p.slot(1) * PAGE_SIZE
  p.commit()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    p.begin()
    p.willWrite(off, 8)
    p.mem.setU64(off, p.mem.u64(off) + 1)
    p.commit()
  }
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n
  p.close()
  return us
}

if (process.argv[2] === '--child') {
  const us = loop(process.argv[3], process.argv[4], Number(process.argv[5]))
  process.stdout.write(String(us))
} else {
  const n = Number(arg('--n', '2000'))
  const dir = mkdtempSync(join(arg('--dir', tmpdir()), 'persist-bench-full-'))
  const child = (path, durability, count, env = {}) =>
    spawnSync(process.execPath, [self, '--child', path, durability, String(count)], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    })
  try {
    const rows = []
    {
      // baseline: pwrite 4 KiB + fdatasync on the same file system
      const { openSync, writeSync, fdatasyncSync, closeSync } = await import('node:fs')
      const fd = openSync(join(dir, 'probe'), 'w+')
      writeSync(fd, Buffer.alloc(1 << 20))
      fdatasyncSync(fd)
      const b = Buffer.alloc(4096, 1)
      const m = Math.min(n, 500)
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < m; i++) {
        writeSync(fd, b, 0, 4096, (i % 200) * 4096)
        fdatasyncSync(fd)
      }
      rows.push(['baseline pwrite+fdatasync', Number(process.hrtime.bigint() - t0) / 1000 / m])
      closeSync(fd)
    }
    for (const durability of ['process', 'full']) {
      const path = join(dir, `${durability}.persist`)
      const r = child(path, durability, n)
      rows.push([`${durability}, 1 process`, Number(r.stdout)])
    }
    // syncs per commit, from the trace of a separate run of n commits (setup excluded)
    const tpath = join(dir, 'trace')
    const store = join(dir, 'traced.persist')
    child(store, 'full', 1)
    child(store, 'full', n, { PERSIST_IO_TRACE: tpath })
    const tr = readFileSync(tpath)
    let syncs = 0
    let commits = 0
    for (let q = 0; q + 16 <= tr.length; q += 16 + tr.readUInt32LE(q + 4)) {
      if (tr[q] === 0x53) syncs++
      if (tr[q] === 0x43) commits++
    }
    // 4 concurrent committers ('full'): aggregate commits per second
    const cpath = join(dir, 'concurrent.persist')
    child(cpath, 'full', 1)
    const t0 = Date.now()
    const kids = await Promise.all(
      [0, 1, 2, 3].map(
        () =>
          new Promise((resolve) => {
            import('node:child_process').then(({ execFile }) =>
              execFile(process.execPath, [self, '--child', cpath, 'full', String(n)], (_e, out) =>
                resolve(Number(out)),
              ),
            )
          }),
      ),
    )
    const ms = Date.now() - t0
    for (const [name, us] of rows) console.log(`${name.padEnd(26)} ${us.toFixed(1).padStart(8)} µs/commit`)
    console.log(
      `full: ${(syncs / commits).toFixed(2)} syncs per commit (${syncs} syncs / ${commits} commits, trace, open's recovery included)`,
    )
    console.log(
      `full, 4 processes x ${n}: ${((ms * 1000) / (4 * n)).toFixed(1)} µs/commit aggregate wall time ` +
        `(per process ${kids.map((k) => k.toFixed(0)).join('/')} µs) — no group commit yet`,
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
