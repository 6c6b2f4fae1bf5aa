// Workload 6 (seed 002's "dynamic allocation file buffer"): a store holds the
// string "Foo" at its start and a large amount of other data after it. Change
// "Foo" to "Foobar" and count the bytes this process sent to the disk for the
// change, from /proc/self/io write_bytes (counted when a page is dirtied, also
// through a shared mapping) across the change and an fsync — vs rewriting the file.
import { execFileSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { fmtBytes, KiB, MiB } from '../lib/docs.mjs'
import { loadPersist } from '../lib/ours.mjs'
import { openLmdb, openSqlite } from '../lib/peers.mjs'
import { Result } from '../lib/result.mjs'

const firstLine = (e) => String(e?.message ?? e).split('\n')[0]

function writeBytes() {
  const m = /write_bytes:\s*(\d+)/.exec(require_io())
  return Number(m[1])
}
function require_io() {
  const fd = openSync('/proc/self/io', 'r')
  const b = Buffer.alloc(4096)
  const n = readSync(fd, b, 0, 4096, 0)
  closeSync(fd)
  return b.toString('utf8', 0, n)
}
const syncAll = () => execFileSync('sync')
function fsyncPath(path) {
  const fd = openSync(path, 'r+')
  fsyncSync(fd)
  closeSync(fd)
}

/** Bytes written by fn (which must make its change durable itself). */
async function written(fn) {
  syncAll()
  const b0 = writeBytes()
  const t0 = performance.now()
  await fn()
  const ms = performance.now() - t0
  return { bytes: writeBytes() - b0, ms }
}

export default {
  async run(ctx) {
    const sizes = ctx.quick ? [1 * MiB] : [16 * MiB, 256 * MiB]
    const chunkSize = ctx.quick ? 256 * KiB : 64 * MiB
    const res = new Result({
      id: 'foo-foobar',
      title: 'Seed 002: "Foo" → "Foobar" at the start of a large store — bytes written',
      description:
        'The store starts with the string "Foo", followed by the given amount of other data. Changing it to "Foobar" must not rewrite the file. ' +
        'KiB this process sent to the disk for the change plus its fsync (`write_bytes` in /proc/self/io, which counts pages as they are dirtied, also through a shared mapping), ' +
        'after a `sync` so that nothing else is pending. lmdb commits with sync; SQLite WAL FULL includes a checkpoint (the page must reach the database file eventually); ' +
        'LevelDB put with sync:true (later compactions not counted); the flat file is rewritten as a whole (write tmp + fsync + rename), as any "edit a text/JSON file" program does. ' +
        'Seed 002 speaks of a 4 GB file: the flat-file rewrite grows with the file (4 GiB written), the others do not; the run stops at 256 MiB to spare the shared disk.',
      columns: sizes.flatMap((s) => [
        { name: `${fmtBytes(s)} store: written`, unit: 'KiB', x: s },
        { name: `${fmtBytes(s)}: time`, unit: 'ms', ratio: false },
      ]),
      summary: sizes.length * 2 - 2,
      plot: {
        type: 'bar',
        column: sizes.length * 2 - 2,
        title: `KiB written to change "Foo" → "Foobar" in a ${fmtBytes(sizes.at(-1))} store (log)`,
      },
    })
    const chunk = Buffer.alloc(chunkSize)
    randomFillSync(chunk)
    const nChunks = (s) => Math.max(1, Math.round(s / chunkSize))
    const body = (s) => chunk.subarray(0, Math.min(s, chunkSize))
    const rows = { persist: [], lmdb: [], sqlite: [], level: [], file: [] }
    const push = (k, r) => rows[k].push(r.bytes / 1024, r.ms)

    const persist = await loadPersist()
    let oursReason = persist.open ? null : `not available yet: ${persist.reason}`

    for (const size of sizes) {
      const dir = join(ctx.tmp, `s${size}`)
      mkdirSync(dir)
      if (!oursReason) {
        const path = join(dir, 'store.persist')
        try {
          let s = persist.open(path)
          s.transaction(() => {
            s.root.s = 'Foo'
            s.root.blobs = []
          })
          for (let i = 0; i < nChunks(size); i++) s.transaction(() => s.root.blobs.push(body(size)))
          s.close()
          s = persist.open(path)
          push(
            'persist',
            await written(() => {
              s.transaction(() => {
                s.root.s = 'Foobar'
              })
              fsyncPath(path)
            }),
          )
          if (s.root.s !== 'Foobar') throw new Error('string did not change')
          s.close()
        } catch (e) {
          oursReason = `error at ${fmtBytes(size)}: ${firstLine(e)}`
          ctx.log('persist failed:', e?.stack ?? e)
        }
        rmSync(path, { force: true })
      }
      {
        let db = openLmdb(dir, { sync: true, mapSize: size * 1.5 + 256 * MiB })
        db.putSync('a', 'Foo')
        for (let i = 0; i < nChunks(size); i++) db.putSync(`blob${i}`, body(size))
        await db.close()
        db = openLmdb(dir, { sync: true })
        db.get('a')
        push('lmdb', await written(() => db.putSync('a', 'Foobar')))
        await db.close()
      }
      {
        const { default: Database } = await import('better-sqlite3')
        const path = join(dir, 'db.sqlite')
        let db = new Database(path)
        db.pragma('journal_mode = OFF')
        db.pragma('synchronous = OFF')
        db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v)')
        db.prepare("INSERT INTO kv VALUES ('a', 'Foo')").run()
        const ins = db.prepare('INSERT INTO kv VALUES (?, ?)')
        for (let i = 0; i < nChunks(size); i++) ins.run(`blob${i}`, body(size))
        db.pragma('journal_mode = WAL')
        db.close()
        db = openSqlite(dir, { synchronous: 'FULL' })
        db.prepare("SELECT v FROM kv WHERE k = 'a'").get()
        const upd = db.prepare("UPDATE kv SET v = 'Foobar' WHERE k = 'a'")
        push(
          'sqlite',
          await written(() => {
            upd.run()
            db.pragma('wal_checkpoint(TRUNCATE)')
          }),
        )
        db.close()
      }
      {
        const path = join(dir, 'level')
        let db = new ClassicLevel(path, { valueEncoding: 'buffer' })
        await db.open()
        await db.put('a', Buffer.from('Foo'))
        const piece = Math.min(size, 1 * MiB)
        for (let i = 0; i < Math.max(1, Math.round(size / piece)); i++)
          await db.put(`blob${i}`, chunk.subarray(0, piece))
        await db.close()
        db = new ClassicLevel(path, { valueEncoding: 'buffer' })
        await db.open()
        push('level', await written(() => db.put('a', Buffer.from('Foobar'), { sync: true })))
        await db.close()
      }
      {
        // The flat file: "Foo" then the data. Rewriting it is the only way to insert.
        const path = join(dir, 'flat.txt')
        let fd = openSync(path, 'w')
        writeSync(fd, 'Foo')
        for (let i = 0; i < nChunks(size); i++) writeSync(fd, body(size))
        closeSync(fd)
        push(
          'file',
          await written(() => {
            const tmp = `${path}.tmp`
            const out = openSync(tmp, 'w')
            fd = openSync(path, 'r')
            writeSync(out, 'Foobar')
            const buf = Buffer.alloc(8 * MiB)
            let pos = 3
            for (;;) {
              const n = readSync(fd, buf, 0, buf.length, pos)
              if (n === 0) break
              writeSync(out, buf, 0, n)
              pos += n
            }
            closeSync(fd)
            fsyncSync(out)
            closeSync(out)
            renameSync(tmp, path)
          }),
        )
      }
      rmSync(dir, { recursive: true, force: true })
      ctx.log(`${fmtBytes(size)} done`)
    }
    if (oursReason) res.skip('persist: root.s = "Foobar"', oursReason)
    else res.row('persist: transaction(() => root.s = "Foobar") + fsync', 'ours', rows.persist)
    res.row('lmdb (sync): putSync', 'peer', rows.lmdb)
    res.row('better-sqlite3 (WAL FULL): UPDATE + checkpoint', 'peer', rows.sqlite)
    res.row('classic-level: put (sync: true)', 'peer', rows.level)
    res.row('flat file: rewrite (tmp + fsync + rename)', 'peer', rows.file)
    return res
  },
}
