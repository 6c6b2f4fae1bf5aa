import { inspect } from 'node:util'
import { isPersistent, open, PersistError, toJS } from '@persist/persist'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const t = tempDir()
afterEach(() => {})
process.on('exit', t.cleanup)

describe('open / root / close', () => {
  it('creates a store and keeps values across reopen', () => {
    const file = t.file('basic.persist')
    const s = open(file)
    s.root.visits = (s.root.visits ?? 0) + 1
    s.root.name = 'Joe'
    s.root.pi = 3.25
    s.root.big = 2n ** 70n
    s.root.flags = { ok: true, none: null, undef: undefined }
    s.root.when = new Date('2020-01-02T03:04:05.006Z')
    s.root.bytes = new Uint8Array([1, 2, 3])
    s.close()
    const s2 = open(file)
    expect(s2.root.visits).toBe(1)
    expect(s2.root.name).toBe('Joe')
    expect(s2.root.pi).toBe(3.25)
    expect(s2.root.big).toBe(2n ** 70n)
    expect(toJS(s2.root.flags)).toEqual({ ok: true, none: null, undef: undefined })
    expect('undef' in s2.root.flags).toBe(true)
    expect(s2.root.when).toEqual(new Date('2020-01-02T03:04:05.006Z'))
    expect(s2.root.bytes).toEqual(new Uint8Array([1, 2, 3]))
    s2.close()
  })

  it('runs the README quick example', () => {
    const store = open(t.file('readme.persist'))
    const root = store.root
    root.visits = (root.visits ?? 0) + 1
    store.transaction(() => {
      root.people ??= {}
      root.people.joe = { name: 'Joe', age: 27, tags: ['admin'] }
    })
    expect(root.people.joe.age).toBe(27)
    expect(toJS(root.people)).toEqual({ joe: { name: 'Joe', age: 27, tags: ['admin'] } })
    store.close()
  })

  it('a typed root', () => {
    interface Shape {
      count?: number
      items?: string[]
    }
    const s = open<Shape>(t.file('typed.persist'))
    s.root.count = 1
    s.root.items = ['a']
    s.root.items.push('b')
    expect(s.root.items.length).toBe(2)
    s.close()
  })

  it('using a closed store throws PERSIST_CLOSED', () => {
    const s = open(t.file('closed.persist'))
    const r = s.root
    r.a = { b: 1 }
    const a = r.a
    s.close()
    expect(() => r.x).toThrow(PersistError)
    expect(() => a.b).toThrowError(/closed/)
    try {
      void s.root
    } catch (e) {
      expect((e as PersistError).code).toBe('PERSIST_CLOSED')
    }
    s.close() // idempotent
  })

  it('validates arguments before touching the file', () => {
    expect(() => open('')).toThrow(TypeError)
    expect(() => open(t.file('x.persist'), { durability: 'sometimes' as never })).toThrow(TypeError)
    expect(() => open(t.file('x.persist'), { bogus: 1 } as never)).toThrow(/unknown option 'bogus'/)
    expect(() => open(t.file('x.persist'), { pollIntervalMs: 0 })).toThrow(RangeError)
  })

  it('console.log / util.inspect show the contents', () => {
    const s = open(t.file('inspect.persist'))
    s.root.a = { b: [1, 2, { c: 'd' }] }
    const text = inspect(s.root, { depth: 5 })
    expect(text).toContain("c: 'd'")
    expect(text).toContain('b: [')
    expect(inspect(s.root.a.b)).toBe("[ 1, 2, { c: 'd' } ]")
    s.close()
  })

  it('identity: the same record gives the same proxy; references are shared', () => {
    const s = open(t.file('identity.persist'))
    const r = s.root
    r.b = { n: 1 }
    r.a = r.b
    expect(r.a).toBe(r.b)
    r.a.n = 2
    expect(r.b.n).toBe(2)
    r.self = r.b
    r.b.me = r.b // a cycle
    expect(r.b.me.me.me).toBe(r.b)
    expect(isPersistent(r.b)).toBe(true)
    expect(isPersistent({})).toBe(false)
    s.close()
  })

  it('values from another store are copied, not linked', () => {
    const s1 = open(t.file('s1.persist'))
    const s2 = open(t.file('s2.persist'))
    s1.root.obj = { x: 1, list: [1, 2] }
    s2.root.copy = s1.root.obj
    s2.root.copy.x = 99
    expect(s1.root.obj.x).toBe(1)
    expect(toJS(s2.root.copy)).toEqual({ x: 99, list: [1, 2] })
    s1.close()
    s2.close()
  })

  it('a removed object becomes stale after its turn, with a clear error', async () => {
    const s = open(t.file('stale.persist'))
    s.root.people = [{ name: 'a' }, { name: 'b' }]
    // Within the turn a popped object can be re-attached.
    const b = s.root.people.pop()
    s.root.archived = b
    expect(s.root.archived.name).toBe('b')
    await Promise.resolve()
    const a = s.root.people[0]
    delete s.root.people
    await new Promise((r) => setImmediate(r))
    expect(() => a.name).toThrowError(expect.objectContaining({ code: 'PERSIST_STALE' }))
    expect(s.root.archived.name).toBe('b')
    s.close()
  })

  it('unsupported values throw TypeError naming the path', () => {
    const s = open(t.file('unsupported.persist'))
    expect(() => {
      s.root.a = { b: [1, 2, 3, () => 1] }
    }).toThrowError(/a\.b\[3\].*function/)
    expect(() => {
      s.root[Symbol('x') as never] = 1
    }).toThrow(TypeError)
    expect(() => {
      s.root.m = new Map()
    }).toThrow(TypeError)
    s.close()
  })

  it('readonly stores reject writes with PERSIST_READONLY', () => {
    const file = t.file('ro.persist')
    const w = open(file)
    w.root.x = 1
    w.close()
    const r = open(file, { readonly: true })
    expect(r.root.x).toBe(1)
    expect(() => {
      r.root.x = 2
    }).toThrowError(expect.objectContaining({ code: 'PERSIST_READONLY' }))
    r.close()
  })

  it('stats(), check() and gc() collect cycles', async () => {
    const s = open(t.file('gc.persist'))
    s.root.a = { name: 'a' }
    s.root.a.self = s.root.a
    // Within the turn that created it, a detached record is protected (it may be
    // re-attached before the turn ends); the next turn's gc() collects the cycle.
    expect(s.gc().freedObjects).toBe(0)
    delete s.root.a
    await Promise.resolve()
    const freed = s.gc()
    expect(freed.freedObjects).toBeGreaterThanOrEqual(1)
    expect(s.check()).toEqual([])
    expect(s.stats().path).toBe(s.path)
    s.close()
  })
})
