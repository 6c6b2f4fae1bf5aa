// Workload 2: update one field deep in a nested value (doc.meta.count += 1, each
// update committed) while the value grows from 1 KiB to 1 MiB. A store that keeps
// values as blobs must read, decode, modify, encode and write the whole value;
// ours writes 8 bytes in place, so its curve must stay flat.
import { join } from 'node:path'
import { fmtBytes, KiB, MiB, makeDoc } from '../lib/docs.mjs'
import { measureAuto } from '../lib/measure.mjs'
import { loadPersist } from '../lib/ours.mjs'
import { jsonFile, openLevel, openLmdb, openSqlite } from '../lib/peers.mjs'
import { Result } from '../lib/result.mjs'

const firstLine = (e) => String(e?.message ?? e).split('\n')[0]

export default {
  async run(ctx) {
    const sizes = ctx.quick ? [1 * KiB, 16 * KiB] : [1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB]
    const opt = ctx.quick
      ? { iterations: 1, time: 0, warmup: false, sampleMs: 2 }
      : { iterations: 5, time: 300 }
    const res = new Result({
      id: 'nested-update',
      title: 'Update one field of a nested value, 1 KiB → 1 MiB',
      description:
        '`doc.meta.count += 1`, each update its own committed transaction (process-crash durability: lmdb noSync, SQLite WAL NORMAL, LevelDB sync:false). ' +
        'lmdb: get + msgpack decode + modify + encode + put; SQLite: `json_set` in SQL on a TEXT JSON column and on a JSONB column; LevelDB: get + JSON.parse + modify + JSON.stringify + put; ' +
        'JSON file: the document in memory, rewritten atomically. µs per update, by value size (JSON bytes).',
      columns: sizes.map((s) => ({ name: fmtBytes(s), unit: 'µs', x: s })),
      summary: sizes.length - 1,
      plot: {
        type: 'line',
        title: 'Nested field update vs value size',
        xTitle: 'value size (bytes, log)',
        yTitle: 'µs per committed update (log)',
      },
    })
    const rows = new Map()
    const put = (name, kind, i, v, note) => {
      if (!rows.has(name)) rows.set(name, { kind, values: sizes.map(() => null), note })
      rows.get(name).values[i] = v
    }
    const persist = await loadPersist()
    if (!persist.open) res.skip('persist root.doc.meta.count += 1', `not available yet: ${persist.reason}`)
    let oursFailed = false

    for (let i = 0; i < sizes.length; i++) {
      const size = sizes[i]
      const doc = makeDoc(size)
      const json = JSON.stringify(doc)
      ctx.log(`value ${fmtBytes(size)} (${json.length} B JSON, ${doc.items.length} items)`)

      if (persist.open && !oursFailed) {
        const store = persist.open(join(ctx.tmp, `nested-${i}.persist`))
        try {
          const root = store.root
          store.transaction(() => {
            root.doc = doc
          })
          const m = await measureAuto(
            'persist',
            () =>
              store.transaction(() => {
                root.doc.meta.count += 1
              }),
            opt,
          )
          put('persist: transaction(() => root.doc.meta.count += 1)', 'ours', i, m.us)
          const m2 = await measureAuto(
            'persist turn',
            async () => {
              root.doc.meta.count += 1
            },
            opt,
          )
          put('persist: root.doc.meta.count += 1, one turn each', 'ours', i, m2.us)
        } catch (e) {
          oursFailed = true
          res.skip('persist', `error at ${fmtBytes(size)}: ${firstLine(e)}`)
          ctx.log('persist failed:', e?.stack ?? e)
        } finally {
          store.close()
        }
      }

      {
        const db = openLmdb(ctx.tmp, { sync: false, name: `lmdb-${i}` })
        db.putSync('doc', doc)
        const m = await measureAuto(
          'lmdb',
          () =>
            db.transactionSync(() => {
              const v = db.get('doc')
              v.meta.count += 1
              db.putSync('doc', v)
            }),
          opt,
        )
        put('lmdb noSync: get + decode + modify + encode + put', 'peer', i, m.us)
        await db.close()
      }
      {
        const db = openSqlite(ctx.tmp, { synchronous: 'NORMAL', name: `nested-${i}.sqlite` })
        db.exec('CREATE TABLE docs (id INTEGER PRIMARY KEY, v TEXT, b BLOB)')
        db.prepare('INSERT INTO docs VALUES (1, ?, jsonb(?))').run(json, json)
        const upd = db.prepare(
          "UPDATE docs SET v = json_set(v, '$.meta.count', json_extract(v, '$.meta.count') + 1) WHERE id = 1",
        )
        const m = await measureAuto('sqlite json_set', () => upd.run(), opt)
        put('better-sqlite3 WAL NORMAL: json_set (TEXT)', 'peer', i, m.us)
        const updb = db.prepare(
          "UPDATE docs SET b = jsonb_set(b, '$.meta.count', b ->> '$.meta.count' + 1) WHERE id = 1",
        )
        const mb = await measureAuto('sqlite jsonb_set', () => updb.run(), opt)
        put('better-sqlite3 WAL NORMAL: jsonb_set (JSONB)', 'peer', i, mb.us)
        db.close()
      }
      {
        const db = await openLevel(ctx.tmp, { name: `level-${i}` })
        await db.put('doc', json)
        const m = await measureAuto(
          'level',
          async () => {
            const v = JSON.parse(await db.get('doc'))
            v.meta.count += 1
            await db.put('doc', JSON.stringify(v))
          },
          opt,
        )
        put('classic-level: get + parse + modify + stringify + put', 'peer', i, m.us)
        await db.close()
      }
      {
        const f = jsonFile(join(ctx.tmp, `nested-${i}.json`))
        const data = structuredClone(doc)
        f.write(data)
        const m = await measureAuto(
          'json',
          () => {
            data.meta.count += 1
            f.write(data)
          },
          opt,
        )
        put('JSON file: modify in memory + atomic rewrite', 'peer', i, m.us)
      }
      {
        const data = structuredClone(doc)
        const m = await measureAuto('plain', () => (data.meta.count += 1), opt)
        put('plain JS object (not persistent)', 'ref', i, m.us)
      }
    }
    for (const [name, r] of rows) res.row(name, r.kind, r.values, r.note)
    return res
  },
}
