import { spawn } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { open, toJS } from '@persist/persist'
import { describe, expect, it } from 'vitest'
import { fixtures, runNode, tempDir } from './helpers.js'

const t = tempDir()
process.on('exit', t.cleanup)

function waitForLine(p: ReturnType<typeof spawn>, re: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got: ${buf}`)), timeoutMs)
    p.stdout!.on('data', (d) => {
      buf += d
      const m = buf.match(re)
      if (m) {
        clearTimeout(timer)
        resolve(m[0])
      }
    })
  })
}

describe('across processes', () => {
  it('root.n += 1 is exact: 4 processes × 5,000 turns = 20,000', async () => {
    const file = t.file('counter.persist')
    open(file).close()
    await Promise.all([0, 1, 2, 3].map(() => runNode('increment.mjs', [file, '5000'])))
    const s = open(file)
    expect(s.root.n).toBe(20_000)
    expect(s.check()).toEqual([])
    s.close()
  })

  it('transaction()/stats() inside a turn join it: 2 processes × 1,000 read-call-write turns = 2,000', async () => {
    const file = t.file('split.persist')
    open(file).close()
    await Promise.all([runNode('split.mjs', [file, '1000']), runNode('split.mjs', [file, '1000'])])
    const s = open(file)
    expect(s.root.x).toBe(2000)
    s.close()
  })

  it('another process sees committed data, never a half turn, and after kill -9 the turn is rolled back', async () => {
    const file = t.file('killed.persist')
    for (let trial = 0; trial < 10; trial++) {
      const child = spawn(process.execPath, [join(fixtures, 'writer.mjs'), file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      const line = await waitForLine(child, /committed (\d+)\n/)
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 30))
      // Read while it writes: the two fields always agree.
      const reader = open(file)
      const a = reader.root.a.i
      const b = reader.root.b.i
      expect(a).toBe(b)
      reader.close()
      child.kill('SIGKILL')
      await new Promise((r) => child.on('close', r))
      const s = open(file)
      expect(s.root.a.i).toBe(s.root.b.i)
      expect(s.root.a.i).toBeGreaterThanOrEqual(Number(line.match(/\d+/)![0]))
      expect(toJS(s.root.log).at(-1)).toBe(s.root.a.i)
      expect(s.check()).toEqual([])
      s.close()
    }
  })

  it('a lock holder killed mid-turn: the next process proceeds at once and sees the last commit', async () => {
    const file = t.file('holder.persist')
    const s0 = open(file)
    s0.root.x = 'committed'
    s0.close()
    const child = spawn(process.execPath, [join(fixtures, 'holder.mjs'), file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    await waitForLine(child, /holding/)
    child.kill('SIGKILL')
    await new Promise((r) => child.on('close', r))
    const started = Date.now()
    const s = open(file, { lockTimeoutMs: 2000 })
    expect(s.root.x).toBe('committed')
    expect(Date.now() - started).toBeLessThan(1000)
    s.close()
  })

  it('two stores locked in opposite orders: PERSIST_LOCKED instead of a deadlock', async () => {
    const a = t.file('dl-a.persist')
    const b = t.file('dl-b.persist')
    open(a).close()
    open(b).close()
    const go = t.file('go')
    const r1 = t.file('ready1')
    const r2 = t.file('ready2')
    const o1 = t.file('open1')
    const o2 = t.file('open2')
    const p1 = runNode('deadlock.mjs', [a, b, o1, o2, r1, go])
    const p2 = runNode('deadlock.mjs', [b, a, o2, o1, r2, go])
    const until = Date.now() + 10_000
    while (!(existsSync(r1) && existsSync(r2)) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20))
    writeFileSync(go, '1')
    const started = Date.now()
    const outs = (await Promise.all([p1, p2])).map((s) => s.trim())
    expect(Date.now() - started).toBeLessThan(8000)
    expect(outs).toContain('PERSIST_LOCKED')
  })

  it('changed() wakes a watcher in another process when a commit lands', async () => {
    const file = t.file('watch.persist')
    open(file).close()
    const child = spawn(process.execPath, [join(fixtures, 'watcher.mjs'), file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    await waitForLine(child, /ready/, 30_000)
    const s = open(file)
    const before = Date.now()
    s.root.n = 1
    await Promise.resolve()
    const line = await waitForLine(child, /changed (\d+) (\d+)/, 30_000)
    const at = Number(line.split(' ')[1])
    // Typically ~10 ms (one poll interval); the bound leaves room for a loaded CI machine.
    expect(at - before).toBeLessThan(3000)
    s.close()
  })

  it('watch() in the same process sees commits of another handle', async () => {
    const file = t.file('watch2.persist')
    const w = open(file, { pollIntervalMs: 5 })
    const seen: number[] = []
    const stop = w.watch(({ txid }) => seen.push(txid))
    const s = open(file)
    s.root.a = 1
    await new Promise((r) => setTimeout(r, 50))
    s.root.a = 2
    await new Promise((r) => setTimeout(r, 50))
    stop()
    expect(seen.length).toBe(2)
    expect(seen[1]).toBeGreaterThan(seen[0])
    s.close()
    w.close()
  })

  it("a watcher's own read-only turn does not hide another handle's commit", async () => {
    const file = t.file('watch3.persist')
    const w = open(file, { pollIntervalMs: 50 })
    void w.root.x
    await Promise.resolve()
    const seen: number[] = []
    const stop = w.watch(({ txid }) => seen.push(txid))
    const s = open(file)
    s.root.x = 1
    await Promise.resolve() // s commits
    void w.root.x // a read-only turn of the watcher after the commit, before its next poll
    await Promise.resolve()
    await new Promise((r) => setTimeout(r, 200))
    stop()
    expect(seen.length).toBe(1)
    w.root.y = 2 // the watcher's own write is not reported to itself
    await Promise.resolve()
    const seen2: number[] = []
    const stop2 = w.watch(({ txid }) => seen2.push(txid))
    await new Promise((r) => setTimeout(r, 200))
    stop2()
    expect(seen2).toEqual([])
    expect(s.root.y).toBe(2)
    s.close()
    w.close()
  })
})
