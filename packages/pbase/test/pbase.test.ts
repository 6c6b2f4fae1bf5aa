import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { PBase, register } from '@persist/pbase'
import { open, toJS } from '@persist/persist'
import { describe, expect, it } from 'vitest'
import { Employee, Person } from './fixtures/classes.mjs'
import { fixtures, runNode, tempDir } from './helpers.js'

const t = tempDir('pbase-test-')
process.on('exit', t.cleanup)

describe('PBase classes', () => {
  it("the seed's person example across processes", async () => {
    const file = t.file('seed.persist')
    await runNode('seed.mjs', [file, 'create'])
    await runNode('seed.mjs', [file, 'birthday'])
    const out = await runNode('seed.mjs', [file, 'print'])
    expect(out.trim()).toBe('true <p>Joe is 28 years old</p> John (29)')
    const s = open(file)
    expect(s.root.Joe).toBeInstanceOf(Person)
    s.root.Joe.age += 1
    expect(s.root.Joe.age).toBe(29)
    expect(toJS(s.root.Joe)).toEqual({ name: 'Joe', age: 29 })
    expect(JSON.parse(JSON.stringify(s.root.John))).toEqual({ name: 'John', age: 29 })
    s.close()
  })

  it('inheritance, stable names, identity and cycles', () => {
    const s = open(t.file('inherit.persist'))
    s.root.boss = new Employee('Ann', 50, 'ACME')
    const boss = s.root.boss
    expect(boss).toBeInstanceOf(Employee)
    expect(boss).toBeInstanceOf(Person)
    expect(boss).toBeInstanceOf(PBase)
    expect(boss.label).toBe('Ann (50)')
    boss.birthday()
    expect(boss.age).toBe(51)
    s.root.a = boss
    s.root.b = boss
    expect(s.root.a).toBe(s.root.b)
    s.root.joe = new Person('Joe', 1)
    s.root.joe.manager = boss
    boss.report = s.root.joe
    expect(s.root.joe.manager.report.manager).toBe(boss)
    s.close()
  })

  it('the constructor does not run on load; onLoad does', () => {
    let constructed = 0
    let loaded = 0
    class Counted extends PBase {
      n = 0
      constructor() {
        super()
        constructed++
      }
      override onLoad() {
        loaded++
      }
    }
    register(Counted)
    const file = t.file('onload.persist')
    const s = open(file)
    s.root.c = new Counted()
    const before = constructed
    s.close()
    const s2 = open(file)
    expect(s2.root.c.n).toBe(0)
    expect(constructed).toBe(before)
    expect(loaded).toBe(1)
    s2.close()
  })

  it('two classes with one name is an error; unregistered classes need registration', () => {
    class Dup extends PBase {}
    register(Dup, 'dup.name')
    class Dup2 extends PBase {}
    expect(() => register(Dup2, 'dup.name')).toThrow(/already registered/)
    expect(() => register(class {} as never)).toThrow(TypeError)
  })

  it('unknown class when reading: PERSIST_UNKNOWN_CLASS, or read as a dict', async () => {
    const file = t.file('unknown.persist')
    await runNode('v1.mjs', [file])
    const s = open(file)
    expect(() => s.root.acct).toThrowError(
      expect.objectContaining({ code: 'PERSIST_UNKNOWN_CLASS', message: expect.stringMatching(/Account/) }),
    )
    s.close()
    const d = open(file, { unknownClasses: 'dict' })
    expect(toJS(d.root.acct)).toEqual({ owner: 'ann', legacy: 'old-field' })
    d.close()
  })

  it('schema evolution: new fields get defaults, old fields stay readable', async () => {
    const file = t.file('evolve.persist')
    await runNode('v1.mjs', [file])
    const out = JSON.parse(await runNode('v2.mjs', [file]))
    expect(out).toEqual({
      instance: true,
      owner: 'ann',
      balance: 100,
      tags: ['new', 'migrated'],
      legacy: 'old-field',
    })
    // The object default was stored on first read, so the push persisted.
    const again = JSON.parse(await runNode('v2.mjs', [file]))
    expect(again.tags).toEqual(['new', 'migrated', 'migrated'])
  })

  it('fields that cannot be stored throw a clear error', () => {
    class WithFn extends PBase {
      cb = () => 1
    }
    class WithSym extends PBase {
      [Symbol.for('x')] = 1
    }
    const s = open(t.file('bad-fields.persist'))
    expect(() => {
      s.root.f = new WithFn()
    }).toThrowError(/function/)
    expect(() => {
      s.root.g = new WithSym()
    }).toThrowError(/symbol/)
    s.close()
  })

  it('kill -9 while persons are being written: every committed person is intact', async () => {
    const file = t.file('kill.persist')
    for (let trial = 0; trial < 5; trial++) {
      const child = spawn(process.execPath, [join(fixtures, 'person-writer.mjs'), file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let last = 0
      let first: () => void
      const started = new Promise<void>((r) => (first = r))
      child.stdout.on('data', (d: Buffer) => {
        for (const m of String(d).matchAll(/committed (\d+)\n/g)) last = Number(m[1])
        if (last > 0) first()
      })
      await started
      await new Promise((r) => setTimeout(r, Math.random() * 100))
      child.kill('SIGKILL')
      await new Promise((r) => child.on('close', r))
      const s = open(file)
      const n = s.root.count
      expect(n).toBeGreaterThanOrEqual(last)
      expect(s.root.people.length).toBe(n)
      for (let i = 0; i < n; i++) {
        const p = s.root.people[i]
        expect(p).toBeInstanceOf(Person)
        expect(p.name).toBe(`p${i}`)
      }
      expect(s.check()).toEqual([])
      s.close()
    }
  })
})
