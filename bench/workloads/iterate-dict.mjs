// Workload 3b: iterate every entry of a 100,000-entry dict (string key → number)
// and sum the values. Peers store one row/key per entry, the natural layout there.
import { join } from 'node:path'
import { loadPersist } from '../lib/ours.mjs'
import { jsonFile, openLevel, openLmdb, openSqlite } from '../lib/peers.mjs'
import { Result } from '../lib/result.mjs'

const firstLine = (e) => String(e?.message ?? e).split('\n')[0]

export default {
  async run(ctx) {
    const N = ctx.quick ? 1000 : 100_000
    const opt = ctx.quick
      ? { batch: 1, iterations: 1, time: 0, warmup: false }
      : { batch: 1, iterations: 3, time: 500 }
    const res = new Result({
      id: 'iterate-dict',
      title: `Iterate a ${N.toLocaleString('en-US')}-entry dict`,
      description:
        `Visit every entry (key and value) of a dict of ${N.toLocaleString('en-US')} string keys → numbers and sum the values. ` +
        'lmdb: getRange over the keys; SQLite: SELECT k, v … iterate(); LevelDB: an iterator over all entries; JSON file: read + parse the file, then iterate (a cold read — a running lowdb would iterate the in-memory object, the reference row).',
      columns: [
        { name: 'whole dict', unit: 'ms' },
        { name: 'per entry', unit: 'ns', ratio: false },
      ],
      plot: { type: 'bar', column: 0, title: `Iterate ${N.toLocaleString('en-US')} entries (ms, log scale)` },
    })
    const add = (name, kind, m, note) => res.row(name, kind, [m.us / 1000, (m.us * 1000) / N], note)
    const plain = {}
    let expected = 0
    for (let i = 0; i < N; i++) {
      plain[`key${i}`] = i
      expected += i
    }
    const check = (s, who) => {
      if (s !== expected) throw new Error(`${who}: sum ${s}, expected ${expected}`)
    }

    const persist = await loadPersist()
    if (!persist.open) res.skip('persist: Object.entries(root.dict)', `not available yet: ${persist.reason}`)
    else {
      const store = persist.open(join(ctx.tmp, 'dict.persist'))
      try {
        const root = store.root
        const t0 = performance.now()
        store.transaction(() => {
          root.dict = plain
        })
        ctx.log(`persist: inserted ${N} entries in ${(performance.now() - t0).toFixed(0)} ms`)
        await new Promise((r) => setImmediate(r))
        const m = await ctx.measure(
          'persist entries',
          () => {
            let s = 0
            for (const [, v] of Object.entries(root.dict)) s += v
            check(s, 'persist')
          },
          opt,
        )
        add('persist: for (const [k, v] of Object.entries(root.dict))', 'ours', m)
        const m2 = await ctx.measure(
          'persist for-in',
          () => {
            let s = 0
            const d = root.dict
            for (const k in d) s += d[k]
            check(s, 'persist for-in')
          },
          opt,
        )
        add('persist: for (const k in d) s += d[k]', 'ours', m2)
      } catch (e) {
        res.skip('persist', `error: ${firstLine(e)}`)
        ctx.log('persist failed:', e?.stack ?? e)
      } finally {
        store.close()
      }
    }
    {
      const db = openLmdb(ctx.tmp)
      await db.transaction(() => {
        for (let i = 0; i < N; i++) db.put(`key${i}`, i)
      })
      const m = await ctx.measure(
        'lmdb',
        () => {
          let s = 0
          for (const { value } of db.getRange()) s += value
          check(s, 'lmdb')
        },
        opt,
      )
      add('lmdb: getRange()', 'peer', m)
      await db.close()
    }
    {
      const db = openSqlite(ctx.tmp)
      db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID')
      const ins = db.prepare('INSERT INTO kv VALUES (?, ?)')
      db.transaction(() => {
        for (let i = 0; i < N; i++) ins.run(`key${i}`, i)
      })()
      const q = db.prepare('SELECT k, v FROM kv')
      const m = await ctx.measure(
        'sqlite',
        () => {
          let s = 0
          for (const r of q.iterate()) s += r.v
          check(s, 'sqlite')
        },
        opt,
      )
      add('better-sqlite3: SELECT k, v … iterate()', 'peer', m)
      const qa = db.prepare('SELECT k, v FROM kv').raw()
      const ma = await ctx.measure(
        'sqlite all',
        () => {
          let s = 0
          for (const r of qa.all()) s += r[1]
          check(s, 'sqlite all')
        },
        opt,
      )
      add('better-sqlite3: SELECT k, v … raw().all()', 'peer', ma)
      db.close()
    }
    {
      const db = await openLevel(ctx.tmp, { valueEncoding: 'json' })
      await db.batch(Object.entries(plain).map(([key, value]) => ({ type: 'put', key, value })))
      const m = await ctx.measure(
        'level',
        async () => {
          let s = 0
          for await (const [, v] of db.iterator()) s += v
          check(s, 'level')
        },
        opt,
      )
      add('classic-level: for await (… of db.iterator())', 'peer', m)
      await db.close()
    }
    {
      const f = jsonFile(join(ctx.tmp, 'dict.json'))
      f.write(plain)
      const m = await ctx.measure(
        'json',
        () => {
          let s = 0
          const d = f.read()
          for (const k in d) s += d[k]
          check(s, 'json')
        },
        opt,
      )
      add('JSON file: read + parse + for…in', 'peer', m)
    }
    {
      const m = await ctx.measure(
        'plain',
        () => {
          let s = 0
          for (const k in plain) s += plain[k]
          check(s, 'plain')
        },
        opt,
      )
      add('plain JS object: for…in', 'ref', m)
    }
    return res
  },
}
