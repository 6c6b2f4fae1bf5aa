// Our rows of the counter workloads (shared by counter and counter-full).
import { join } from 'node:path'
import { measureAuto } from '../lib/measure.mjs'

const firstLine = (e) => String(e?.message ?? e).split('\n')[0]

/** Finds a numeric `txid` anywhere in a stats object (the layers nest theirs). */
export function findTxid(stats, depth = 0) {
  if (!stats || typeof stats !== 'object' || depth > 3) return undefined
  for (const [k, v] of Object.entries(stats)) {
    if (/^txid$/i.test(k) && (typeof v === 'number' || typeof v === 'bigint')) return Number(v)
  }
  for (const v of Object.values(stats)) {
    const t = findTxid(v, depth + 1)
    if (t !== undefined) return t
  }
  return undefined
}

/** The store's committed txid: from stats() when exposed, else the facade's internal reader. */
export function txidOf(store) {
  const t = findTxid(store.stats())
  if (t !== undefined) return t
  try {
    if (typeof store.committedTxid === 'function') return Number(store.committedTxid())
  } catch {}
  return undefined
}

export async function ourCounterRows(ctx, res, { persist, pager, durability, opt, add }) {
  const tag = durability === 'full' ? " (durability 'full')" : ''
  if (!persist.open) {
    res.skip(`persist root.x += 1${tag}`, `not available yet: ${persist.reason}`)
  } else {
    let store
    try {
      store = persist.open(join(ctx.tmp, `counter-${durability}.persist`), { durability })
    } catch (e) {
      res.skip(
        `persist${tag}`,
        `not available yet: open(..., { durability: '${durability}' }) failed: ${firstLine(e)}`,
      )
    }
    if (store) {
      try {
        store.transaction(() => {
          store.root.x = 0
        })
        const root = store.root
        // One JS turn per increment: the facade commits at the end of the turn.
        const tx0 = txidOf(store)
        let n = 0
        const m1 = await measureAuto(
          'persist turn',
          async () => {
            root.x += 1
            n++
          },
          opt,
        )
        await new Promise((r) => setImmediate(r))
        const tx1 = txidOf(store)
        if (root.x !== n) throw new Error(`counter is ${root.x}, expected ${n}`)
        const commits = tx0 !== undefined && tx1 !== undefined ? tx1 - tx0 : undefined
        add(
          `persist: root.x += 1, one turn each${tag}`,
          'ours',
          m1,
          commits !== undefined ? `${n} increments → ${commits} commits (txid)` : undefined,
        )
        if (commits !== undefined && commits < n)
          res.note(
            `persist one-turn counter: only ${commits} commits for ${n} increments — turns were merged`,
          )
        const m2 = await measureAuto(
          'persist transaction',
          () =>
            store.transaction(() => {
              root.x += 1
            }),
          opt,
        )
        add(`persist: store.transaction(() => root.x += 1)${tag}`, 'ours', m2)
      } catch (e) {
        res.skip(`persist${tag}`, `error: ${firstLine(e)}`)
        ctx.log('persist failed:', e?.stack ?? e)
      } finally {
        store.close()
      }
    }
  }
  if (!pager.openPager) {
    res.skip(`pager: begin + willWrite(8) + commit${tag}`, `not available yet: ${pager.reason}`)
  } else {
    try {
      await pagerRow(ctx, pager, durability, opt, add, tag)
    } catch (e) {
      if (e?.code === 'PERSIST_UNSUPPORTED') res.skip(`pager${tag}`, `not available yet: ${firstLine(e)}`)
      else {
        res.skip(`pager${tag}`, `error: ${firstLine(e)}`)
        ctx.log('pager failed:', e?.stack ?? e)
      }
    }
  }
}

async function pagerRow(ctx, pager, durability, opt, add, tag) {
  const p = pager.openPager(join(ctx.tmp, `pager-${durability}.persist`), { durability })
  try {
    // One f64 in a freshly allocated page, incremented in its own transaction.
    p.begin()
    const off = p.allocPages(1) * pager.mod.PAGE_SIZE
    p.willWrite(off, 8)
    p.mem.setF64(off, 0)
    p.commit()
    const mem = p.mem
    const tx0 = p.txid
    let n = 0
    const m = await measureAuto(
      'pager txn',
      () => {
        p.begin()
        p.willWrite(off, 8)
        mem.setF64(off, mem.f64(off) + 1)
        p.commit()
        n++
      },
      opt,
    )
    if (mem.f64(off) !== n) throw new Error(`pager counter is ${mem.f64(off)}, expected ${n}`)
    add(
      `pager: begin + willWrite(8) + write + commit${tag}`,
      'ours',
      m,
      `lowest layer, raw f64; ${n} increments → ${p.txid - tx0} commits (txid)`,
    )
  } finally {
    p.close()
  }
}
