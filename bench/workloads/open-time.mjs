// Workload 5: time to open a store and read one small value, by store size
// (1 MiB → 4 GiB). A memory-mapped store maps the file and validates a header:
// O(1). A JSON file must read and parse everything: O(n). Each open is followed by
// one small read (some libraries open lazily) and a close (not timed); median of
// several opens, warm page cache.
import { randomFillSync } from 'node:crypto'
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { fmtBytes, GiB, MiB } from '../lib/docs.mjs'
import { median } from '../lib/measure.mjs'
import { loadPager, loadPersist } from '../lib/ours.mjs'
import { openLmdb, openSqlite } from '../lib/peers.mjs'
import { Result } from '../lib/result.mjs'

const firstLine = (e) => String(e?.message ?? e).split('\n')[0]
const CAP_LEVEL = 256 * MiB // LevelDB writes (and compacts) real data: keep the run short
const CAP_JSON = 256 * MiB // V8's string limit is 512 MiB: a bigger JSON file cannot be parsed at all

async function timeOpens(reps, fn) {
  const ts = []
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint()
    const close = await fn()
    ts.push(Number(process.hrtime.bigint() - t0) / 1e3)
    await close()
  }
  return median(ts)
}

export default {
  async run(ctx) {
    const sizes = ctx.quick ? [1 * MiB, 4 * MiB] : [1 * MiB, 16 * MiB, 256 * MiB, 4 * GiB]
    const chunkSize = ctx.quick ? 256 * 1024 : 64 * MiB
    const reps = ctx.quick ? 3 : 7
    const res = new Result({
      id: 'open-time',
      title: 'Open time vs store size, 1 MiB → 4 GiB',
      description:
        'Open an existing store of the given size and read one small value (median of several opens, warm page cache; close not timed). ' +
        `The stores hold ${fmtBytes(chunkSize)} binary values plus one small "meta" value. ` +
        `classic-level and the JSON file stop at ${fmtBytes(CAP_JSON)} (LevelDB would spend minutes writing and compacting; V8 cannot parse a JSON string over 512 MiB).`,
      columns: sizes.map((s) => ({ name: fmtBytes(s), unit: 'µs', x: s })),
      summary: sizes.length - 1,
      plot: {
        type: 'line',
        title: 'Open + first read vs store size',
        xTitle: 'store size (bytes, log)',
        yTitle: 'µs (log)',
      },
    })
    const chunk = Buffer.alloc(chunkSize)
    randomFillSync(chunk)
    const chunksFor = (s) => Math.max(1, Math.round(s / chunkSize))
    const lenFor = (s) => Math.min(s, chunkSize)
    const vals = { persist: [], pager: [], lmdb: [], sqlite: [], level: [], json: [] }
    const pager = await loadPager()

    const persist = await loadPersist()
    let oursReason = persist.open ? null : `not available yet: ${persist.reason}`

    // On tmpfs when there is room: open time with a warm cache does not depend on
    // the disk, and writing 3 × 4 GiB to a shared disk would take minutes.
    const where = ctx.memTmp(sizes.at(-1) * 1.6)
    res.note(
      where.fs === 'tmpfs'
        ? 'All stores of this workload live on tmpfs (/dev/shm): warm-cache open times, without minutes of disk writes to build the 4 GiB stores.'
        : 'Stores on disk, page cache warm (freshly written).',
    )
    for (const size of sizes) {
      const dir = join(where.dir, `s${size}`)
      mkdirSync(dir)
      const t0 = performance.now()
      // ---- ours
      if (!oursReason) {
        const path = join(dir, 'store.persist')
        try {
          const s = persist.open(path)
          const body = chunk.subarray(0, lenFor(size))
          for (let i = 0; i < chunksFor(size); i++)
            s.transaction(() => {
              if (i === 0) {
                s.root.meta = { n: 1 }
                s.root.blobs = []
              }
              s.root.blobs.push(body)
            })
          s.close()
          vals.persist.push(
            await timeOpens(reps, () => {
              const st = persist.open(path)
              if (st.root.meta.n !== 1) throw new Error('meta mismatch')
              return () => st.close()
            }),
          )
          if (pager.openPager)
            vals.pager.push(
              await timeOpens(reps, () => {
                const p = pager.openPager(path)
                return () => p.close()
              }),
            )
        } catch (e) {
          oursReason = `error at ${fmtBytes(size)}: ${firstLine(e)}`
          ctx.log('persist failed:', e?.stack ?? e)
        }
        rmSync(path, { force: true })
      }
      // ---- lmdb
      {
        const db = openLmdb(dir, { mapSize: size * 1.5 + 256 * MiB })
        db.putSync('meta', { n: 1 })
        const body = chunk.subarray(0, lenFor(size))
        for (let i = 0; i < chunksFor(size); i++) db.putSync(`blob${i}`, body)
        await db.close()
        vals.lmdb.push(
          await timeOpens(reps, () => {
            const d = openLmdb(dir)
            if (d.get('meta').n !== 1) throw new Error('meta mismatch')
            return () => d.close()
          }),
        )
        rmSync(join(dir, 'lmdb'), { recursive: true, force: true })
        rmSync(join(dir, 'lmdb-lock'), { recursive: true, force: true })
      }
      // ---- sqlite (filled with journal off: only the open is measured)
      {
        const path = join(dir, 'db.sqlite')
        const { default: Database } = await import('better-sqlite3')
        const db = new Database(path)
        db.pragma('journal_mode = OFF')
        db.pragma('synchronous = OFF')
        db.exec(
          'CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER); CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)',
        )
        db.prepare("INSERT INTO meta VALUES ('n', 1)").run()
        const ins = db.prepare('INSERT INTO blobs (b) VALUES (?)')
        const body = chunk.subarray(0, lenFor(size))
        for (let i = 0; i < chunksFor(size); i++) ins.run(body)
        db.pragma('journal_mode = WAL')
        db.close()
        vals.sqlite.push(
          await timeOpens(reps, () => {
            const d = openSqlite(dir)
            if (d.prepare("SELECT v FROM meta WHERE k = 'n'").pluck().get() !== 1)
              throw new Error('meta mismatch')
            return () => d.close()
          }),
        )
        rmSync(path, { force: true })
      }
      // ---- classic-level
      if (size <= CAP_LEVEL) {
        const path = join(dir, 'level')
        const db = new ClassicLevel(path, { valueEncoding: 'buffer' })
        await db.open()
        await db.put('meta', Buffer.from('1'))
        const piece = 1 * MiB
        const n = Math.max(1, Math.round(size / piece))
        const value = chunk.subarray(0, Math.min(piece, size))
        for (let i = 0; i < n; i++) await db.put(`blob${i}`, value)
        await db.close()
        vals.level.push(
          await timeOpens(reps, async () => {
            const d = new ClassicLevel(path, { valueEncoding: 'buffer' })
            await d.open()
            if (String(await d.get('meta')) !== '1') throw new Error('meta mismatch')
            return () => d.close()
          }),
        )
        rmSync(path, { recursive: true, force: true })
      } else vals.level.push(null)
      // ---- JSON file
      if (size <= CAP_JSON) {
        const path = join(dir, 'data.json')
        const fd = openSync(path, 'w')
        writeSync(fd, '{"meta":{"n":1},"data":[')
        const str = JSON.stringify('x'.repeat(1000))
        const n = Math.max(1, Math.round(size / (str.length + 1)))
        const line = `${str},`
        const block = line.repeat(1000)
        let left = n
        while (left > 1000) {
          writeSync(fd, block)
          left -= 1000
        }
        writeSync(fd, `${line.repeat(left - 1)}${str}]}`)
        closeSync(fd)
        vals.json.push(
          await timeOpens(size >= 256 * MiB ? 1 : 3, () => {
            const d = JSON.parse(readFileSync(path, 'utf8'))
            if (d.meta.n !== 1) throw new Error('meta mismatch')
            return () => {}
          }),
        )
        rmSync(path, { force: true })
      } else vals.json.push(null)
      rmSync(dir, { recursive: true, force: true })
      ctx.log(`${fmtBytes(size)} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    }
    if (oursReason) res.skip('persist: open() + root.meta.n', oursReason)
    if (vals.persist.length === sizes.length) res.row('persist: open() + root.meta.n', 'ours', vals.persist)
    if (vals.pager.length === sizes.length)
      res.row('pager alone: openPager() (same file)', 'ours', vals.pager)
    res.row('lmdb: open() + get', 'peer', vals.lmdb)
    res.row('better-sqlite3: new Database() + WAL pragmas + SELECT', 'peer', vals.sqlite)
    res.row('classic-level: open() + get (replays its log)', 'peer', vals.level)
    res.row('JSON file: readFileSync + JSON.parse', 'peer', vals.json)
    return res
  },
}
