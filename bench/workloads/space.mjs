// Workload 8: file size after inserting 1 GiB of data, after deleting all of it,
// and after each library's compaction (ours: gc/pack; lmdb: compacting copy;
// SQLite: VACUUM; LevelDB: compactRange).

import { spawnSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fmtBytes, GiB, KiB, MiB } from '../lib/docs.mjs'
import { loadPersist } from '../lib/ours.mjs'
import { openLevel, openLmdb, openSqlite } from '../lib/peers.mjs'
import { Result } from '../lib/result.mjs'

const cli = fileURLToPath(new URL('../../packages/cli/dist/cli.js', import.meta.url))
const firstLine = (e) => String(e?.message ?? e).split('\n')[0]

/** Bytes on disk used by a file or a directory tree (st_blocks × 512). */
function du(path) {
  const st = statSync(path, { throwIfNoEntry: false })
  if (!st) return 0
  if (!st.isDirectory()) return st.blocks * 512
  return readdirSync(path).reduce((a, f) => a + du(join(path, f)), 0)
}
const toMiB = (b) => b / MiB

export default {
  async run(ctx) {
    const total = ctx.quick ? 4 * MiB : 1 * GiB
    const valueSize = 16 * KiB
    const n = total / valueSize
    const perTxn = 256 // values per transaction (4 MiB)
    const res = new Result({
      id: 'space',
      title: `Space after inserting ${fmtBytes(total)}, deleting it all, and compacting`,
      description:
        `${n.toLocaleString('en-US')} values of ${fmtBytes(valueSize)} (random bytes), inserted ${perTxn} per transaction, then all deleted, then compacted. ` +
        "Bytes on disk (allocated blocks) of all the store's files. Compaction: ours `store.gc()` (and `pack()`/`compact()` if present); lmdb has no in-place compaction, its figure is the compacting copy (`backup(path, true)`) that would replace the file; " +
        'SQLite `VACUUM` (WAL checkpointed and truncated); LevelDB `compactRange()` over all keys.',
      columns: [
        { name: 'after insert', unit: 'MiB' },
        { name: 'after delete', unit: 'MiB' },
        { name: 'after compaction', unit: 'MiB' },
      ],
      summary: 1,
      plot: { type: 'bar', column: 1, title: `Space after deleting ${fmtBytes(total)} (MiB, log)` },
    })
    // Sizes only: on tmpfs when there is room (st_blocks counts its pages the same way),
    // which spares the shared disk several GiB of writes.
    const where = ctx.memTmp(total * 3)
    const base = where.dir
    res.note(
      where.fs === 'tmpfs'
        ? 'Files on tmpfs (/dev/shm); sizes are allocated blocks, as on disk.'
        : 'Files on disk.',
    )
    const value = Buffer.alloc(valueSize)
    randomFillSync(value)
    const key = (i) => `k${String(i).padStart(8, '0')}`

    const persist = await loadPersist()
    if (!persist.open) res.skip('persist', `not available yet: ${persist.reason}`)
    else {
      const path = join(base, 'space.persist')
      let store
      try {
        store = persist.open(path)
        const root = store.root
        store.transaction(() => {
          root.data = {}
        })
        for (let i = 0; i < n; i += perTxn)
          store.transaction(() => {
            const d = root.data
            for (let j = i; j < Math.min(n, i + perTxn); j++) d[key(j)] = value
          })
        const a = du(path)
        for (let i = 0; i < n; i += perTxn)
          store.transaction(() => {
            const d = root.data
            for (let j = i; j < Math.min(n, i + perTxn); j++) delete d[key(j)]
          })
        const b = du(path)
        const how = ['gc']
        store.gc()
        for (const m of ['pack', 'compact'])
          if (typeof store[m] === 'function') {
            store[m]()
            how.push(m)
          }
        store.close()
        store = undefined
        const c = du(path)
        res.row(
          `persist (${how.join(' + ')})`,
          'ours',
          [toMiB(a), toMiB(b), toMiB(c)],
          'the file never shrinks in place (other processes may map it)',
        )
        // The offline compaction of @persist/cli: copies the live graph to a new file
        // and renames it over the old one (like lmdb's compacting copy, SQLite VACUUM).
        if (existsSync(cli)) {
          const r = spawnSync(process.execPath, [cli, 'compact', path], { encoding: 'utf8' })
          if (r.status === 0)
            res.row('persist + `persist compact` (@persist/cli)', 'ours', [
              toMiB(a),
              toMiB(b),
              toMiB(du(path)),
            ])
          else res.skip('persist compact (@persist/cli)', `error: ${(r.stderr || r.stdout).split('\n')[0]}`)
        } else
          res.skip(
            'persist compact (@persist/cli)',
            'not available yet: packages/cli/dist/cli.js is not built',
          )
      } catch (e) {
        res.skip('persist', `error: ${firstLine(e)}`)
        ctx.log('persist failed:', e?.stack ?? e)
      } finally {
        store?.close()
        rmSync(path, { force: true })
      }
    }
    {
      const dir = join(base, 'lmdb')
      const db = openLmdb(base, { mapSize: total * 3 + 256 * MiB })
      for (let i = 0; i < n; i += perTxn)
        db.transactionSync(() => {
          for (let j = i; j < Math.min(n, i + perTxn); j++) db.putSync(key(j), value)
        })
      const a = du(dir)
      for (let i = 0; i < n; i += perTxn)
        db.transactionSync(() => {
          for (let j = i; j < Math.min(n, i + perTxn); j++) db.removeSync(key(j))
        })
      const b = du(dir)
      const copy = join(base, 'lmdb-compact')
      mkdirSync(copy)
      await db.backup(copy, true)
      await db.close()
      res.row('lmdb (compaction = backup(copy, true))', 'peer', [toMiB(a), toMiB(b), toMiB(du(copy))])
      rmSync(dir, { recursive: true, force: true })
      rmSync(copy, { recursive: true, force: true })
    }
    {
      const db = openSqlite(base)
      const files = () => du(join(base, 'db.sqlite')) + du(join(base, 'db.sqlite-wal'))
      db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)')
      const ins = db.prepare('INSERT INTO kv VALUES (?, ?)')
      const del = db.prepare('DELETE FROM kv WHERE k = ?')
      const insMany = db.transaction((i) => {
        for (let j = i; j < Math.min(n, i + perTxn); j++) ins.run(key(j), value)
      })
      const delMany = db.transaction((i) => {
        for (let j = i; j < Math.min(n, i + perTxn); j++) del.run(key(j))
      })
      for (let i = 0; i < n; i += perTxn) insMany(i)
      db.pragma('wal_checkpoint(TRUNCATE)')
      const a = files()
      for (let i = 0; i < n; i += perTxn) delMany(i)
      db.pragma('wal_checkpoint(TRUNCATE)')
      const b = files()
      db.exec('VACUUM')
      db.pragma('wal_checkpoint(TRUNCATE)')
      const c = files()
      db.close()
      res.row('better-sqlite3 (WAL; compaction = VACUUM)', 'peer', [toMiB(a), toMiB(b), toMiB(c)])
    }
    {
      const dir = join(base, 'level')
      const db = await openLevel(base, { valueEncoding: 'buffer' })
      for (let i = 0; i < n; i += perTxn) {
        const ops = []
        for (let j = i; j < Math.min(n, i + perTxn); j++) ops.push({ type: 'put', key: key(j), value })
        await db.batch(ops)
      }
      const a = du(dir)
      for (let i = 0; i < n; i += perTxn) {
        const ops = []
        for (let j = i; j < Math.min(n, i + perTxn); j++) ops.push({ type: 'del', key: key(j) })
        await db.batch(ops)
      }
      const b = du(dir)
      await db.compactRange(key(0), key(n))
      await db.close() // LevelDB drops obsolete log files on close/reopen
      const c = du(dir)
      res.row('classic-level (compaction = compactRange)', 'peer', [toMiB(a), toMiB(b), toMiB(c)])
      rmSync(dir, { recursive: true, force: true })
    }
    return res
  },
}
