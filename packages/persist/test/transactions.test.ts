import { open, toJS } from '@persist/persist'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const t = tempDir()
process.on('exit', t.cleanup)

describe('transactions', () => {
  it('commits when fn returns and rolls everything back when it throws', () => {
    const s = open(t.file('tx.persist'))
    const r = s.root
    s.transaction(() => {
      r.a = 1
      r.list = [1, 2, 3]
    })
    expect(() =>
      s.transaction(() => {
        r.a = 2
        r.list.push(4)
        r.fresh = { deep: { x: 1 } }
        throw new Error('boom')
      }),
    ).toThrow('boom')
    expect(r.a).toBe(1)
    expect(toJS(r.list)).toEqual([1, 2, 3])
    expect('fresh' in r).toBe(false)
    expect(s.check()).toEqual([])
    s.close()
  })

  it('nested transactions join; an inner throw undoes only the inner part', () => {
    const s = open(t.file('nested.persist'))
    const r = s.root
    const out = s.transaction(() => {
      r.outer = 1
      try {
        s.transaction(() => {
          r.inner = 1
          r.outer = 2
          throw new Error('inner')
        })
      } catch {}
      r.after = true
      return s.transaction(() => 'value')
    })
    expect(out).toBe('value')
    expect(toJS(r)).toEqual({ outer: 1, after: true })
    s.close()
  })

  it('proxies of records created in a rolled-back transaction are stale', () => {
    const s = open(t.file('rolledback.persist'))
    const r = s.root
    let kept: { x: number } | undefined
    expect(() =>
      s.transaction(() => {
        r.tmp = { x: 1 }
        kept = r.tmp
        throw new Error('no')
      }),
    ).toThrow('no')
    expect(() => kept!.x).toThrowError(expect.objectContaining({ code: 'PERSIST_STALE' }))
    s.close()
  })

  it('an async fn is refused with PERSIST_TXN and rolled back', () => {
    const s = open(t.file('async.persist'))
    expect(() =>
      s.transaction((async () => {
        s.root.x = 1
      }) as never),
    ).toThrowError(expect.objectContaining({ code: 'PERSIST_TXN' }))
    expect('x' in s.root).toBe(false)
    expect(() => s.transaction(1 as never)).toThrow(TypeError)
    s.close()
  })

  it('the turn is the implicit transaction: an await commits it', async () => {
    const file = t.file('turn.persist')
    const s = open(file)
    s.root.n = 1
    await Promise.resolve()
    // Committed: a second handle (its own lock) sees it.
    const other = open(file)
    expect(other.root.n).toBe(1)
    other.close()
    s.close()
  })
})
