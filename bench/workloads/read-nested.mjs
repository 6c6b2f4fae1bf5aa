// Workload 3a: read one nested field (doc.meta.count) of a stored value, from the
// root each time, for a small and a large value.
import { join } from 'node:path'
import { fmtBytes, KiB, MiB, makeDoc } from '../lib/docs.mjs'
import { measureAuto } from '../lib/measure.mjs'
import { loadPersist } from '../lib/ours.mjs'
import { openLevel, openLmdb, openSqlite } from '../lib/peers.mjs'
import { Result } from '../lib/result.mjs'

const firstLine = (e) => String(e?.message ?? e).split('\n')[0]

export default {
  async run(ctx) {
    const sizes = ctx.quick ? [1 * KiB] : [1 * KiB, 64 * KiB, 1 * MiB]
    const opt = ctx.quick
      ? { iterations: 1, time: 0, warmup: false, sampleMs: 2 }
      : { iterations: 5, time: 300 }
    const res = new Result({
      id: 'read-nested',
      title: 'Read one nested field',
      description:
        '`root.doc.meta.count` read from the store each time (no cached object). lmdb: get + msgpack decode (lmdb-js without its object cache); ' +
        "SQLite: `SELECT json_extract(v, '$.meta.count')` (TEXT) and `b ->> '$.meta.count'` (JSONB); LevelDB: getSync + JSON.parse. " +
        'A JSON-file store (lowdb) keeps the parsed document in memory, so its read is the plain-object row.',
      columns: sizes.map((s) => ({ name: fmtBytes(s), unit: 'µs', x: s })),
      summary: sizes.length - 1,
      plot: {
        type: 'line',
        title: 'Read one nested field vs value size',
        xTitle: 'value size (bytes, log)',
        yTitle: 'µs per read (log)',
      },
    })
    const rows = new Map()
    const put = (name, kind, i, v) => {
      if (!rows.has(name)) rows.set(name, { kind, values: sizes.map(() => null) })
      rows.get(name).values[i] = v
    }
    const persist = await loadPersist()
    if (!persist.open) res.skip('persist root.doc.meta.count', `not available yet: ${persist.reason}`)
    let oursFailed = false
    let sink = 0
    for (let i = 0; i < sizes.length; i++) {
      const doc = makeDoc(sizes[i])
      doc.meta.count = 7
      const json = JSON.stringify(doc)
      if (persist.open && !oursFailed) {
        const store = persist.open(join(ctx.tmp, `read-${i}.persist`))
        try {
          const root = store.root
          store.transaction(() => {
            root.doc = doc
          })
          await new Promise((r) => setImmediate(r))
          const m = await measureAuto(
            'persist',
            () => {
              sink += root.doc.meta.count
            },
            opt,
          )
          put('persist: root.doc.meta.count', 'ours', i, m.us)
          const meta = root.doc.meta
          const m2 = await measureAuto(
            'persist held',
            () => {
              sink += meta.count
            },
            opt,
          )
          put('persist: meta.count (proxy held in a variable)', 'ours', i, m2.us)
        } catch (e) {
          oursFailed = true
          res.skip('persist', `error: ${firstLine(e)}`)
          ctx.log('persist failed:', e?.stack ?? e)
        } finally {
          store.close()
        }
      }
      {
        const db = openLmdb(ctx.tmp, { name: `lmdb-${i}` })
        db.putSync('doc', doc)
        const m = await measureAuto(
          'lmdb',
          () => {
            sink += db.get('doc').meta.count
          },
          opt,
        )
        put('lmdb: get + decode', 'peer', i, m.us)
        await db.close()
      }
      {
        const db = openSqlite(ctx.tmp, { name: `read-${i}.sqlite` })
        db.exec('CREATE TABLE docs (id INTEGER PRIMARY KEY, v TEXT, b BLOB)')
        db.prepare('INSERT INTO docs VALUES (1, ?, jsonb(?))').run(json, json)
        const q = db.prepare("SELECT json_extract(v, '$.meta.count') AS c FROM docs WHERE id = 1").pluck()
        const m = await measureAuto(
          'sqlite',
          () => {
            sink += q.get()
          },
          opt,
        )
        put('better-sqlite3: json_extract (TEXT)', 'peer', i, m.us)
        const qb = db.prepare("SELECT b ->> '$.meta.count' AS c FROM docs WHERE id = 1").pluck()
        const mb = await measureAuto(
          'sqlite jsonb',
          () => {
            sink += qb.get()
          },
          opt,
        )
        put('better-sqlite3: ->> on JSONB', 'peer', i, mb.us)
        db.close()
      }
      {
        const db = await openLevel(ctx.tmp, { name: `level-${i}` })
        await db.put('doc', json)
        const m = await measureAuto(
          'level',
          () => {
            sink += JSON.parse(db.getSync('doc')).meta.count
          },
          opt,
        )
        put('classic-level: getSync + JSON.parse', 'peer', i, m.us)
        await db.close()
      }
      {
        const data = structuredClone(doc)
        const m = await measureAuto(
          'plain',
          () => {
            sink += data.meta.count
          },
          opt,
        )
        put('plain JS object (also: JSON-file store in memory)', 'ref', i, m.us)
      }
    }
    if (sink === 0.5) console.log(sink)
    for (const [name, r] of rows) res.row(name, r.kind, r.values)
    return res
  },
}
