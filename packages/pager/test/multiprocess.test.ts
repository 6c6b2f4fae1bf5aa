import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { BEGIN_RECOVERED, BEGIN_REMAPPED, openPager, PAGE_SIZE, type Pager } from '@persist/pager'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const dir = tempDir()
const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name)

function run(script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [fixture(script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    c.stdout.on('data', (d) => (out += d))
    c.stderr.on('data', (d) => (err += d))
    c.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${script} exited ${code}: ${err}`)),
    )
  })
}

function counterStore(path: string): Pager {
  const p = openPager(path)
  p.transaction(() => p.setSlot(1, p.allocPages(1)))
  return p
}

describe('4. multi-process', () => {
  it('4.1 four processes x 10,000 transactions increment a u64 to exactly 40,000', async () => {
    const f = join(dir, 'count.persist')
    const p = counterStore(f)
    await Promise.all([0, 1, 2, 3].map(() => run('incr.mjs', [f, '10000'])))
    p.begin()
    expect(p.mem.u64(p.slot(1) * PAGE_SIZE)).toBe(40000)
    p.commit()
    expect(p.txid).toBe(40001)
    expect(p.check()).toEqual([])
    p.close()
  })

  it('4.2 a second process sees growth made by the first', async () => {
    const f = join(dir, 'grow.persist')
    const p = counterStore(f)
    const size0 = p.mem.size
    const out = JSON.parse(await run('grow.mjs', [f, '20000']))
    expect(out.pageCount).toBeGreaterThan(20000)
    const flags = p.begin()
    expect(flags & BEGIN_REMAPPED).toBe(BEGIN_REMAPPED)
    expect(p.mem.size).toBeGreaterThan(size0)
    expect(p.mem.u64(p.slot(3))).toBe(0xfeedbeef)
    expect(p.runLength(p.slot(2))).toBe(20000)
    p.commit()
    expect(p.check()).toEqual([])
    p.close()
  })

  it('4.4 a reader in another process never sees half of a transaction', async () => {
    const f = join(dir, 'isolation.persist')
    const p = openPager(f)
    p.transaction(() => {
      p.setSlot(1, p.allocPages(1))
      p.setSlot(2, p.allocPages(1))
    })
    const a = p.slot(1) * PAGE_SIZE
    const b = p.slot(2) * PAGE_SIZE + 2048
    const child = run('pairwriter.mjs', [f, '3000'])
    let finished = false
    child.then(() => (finished = true))
    let reads = 0
    let torn = 0
    const seen = new Set<number>()
    while (!finished) {
      for (let i = 0; i < 200; i++) {
        p.begin()
        const x = p.mem.u64(a)
        const y = p.mem.u64(b)
        p.commit()
        reads++
        if (x !== y) torn++
        seen.add(x)
      }
      await new Promise((r) => setImmediate(r))
    }
    await child
    expect(torn).toBe(0)
    expect(reads).toBeGreaterThan(100)
    expect(seen.size).toBeGreaterThan(3) // the reads really interleaved with the writer
    p.begin()
    expect(p.mem.u64(a)).toBe(3000)
    p.commit()
    p.close()
  })

  it('4.5 waitForCommit wakes when another process commits, and times out otherwise', async () => {
    const f = join(dir, 'wait.persist')
    const p = counterStore(f)
    const seen = p.txid
    let t0 = performance.now()
    expect(p.waitForCommit(seen, 100)).toBe(false)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90)
    const child = run('commit-later.mjs', [f, '400'])
    t0 = performance.now()
    // Blocks this thread (the child is another process, so it still commits).
    const woke = p.waitForCommit(seen, 20_000)
    const dt = performance.now() - t0
    expect(woke).toBe(true)
    expect(dt).toBeLessThan(15_000)
    expect(p.txid).toBe(seen + 1)
    await child
    p.begin()
    expect(p.slot(5)).toBe(1)
    expect(() => p.waitForCommit(p.txid, 10)).toThrow(/inside a transaction/)
    p.commit()
    p.close()
  })

  it('4.3 lock-holder death x200: the next locker proceeds within 1 s and sees the last commit', async () => {
    const f = join(dir, 'holder.persist')
    const p = counterStore(f)
    const off = () => p.slot(1) * PAGE_SIZE
    // Holders are spawned two ahead so their startup overlaps the previous kill.
    const spawnHolder = () => {
      const child = spawn(process.execPath, [fixture('holder.mjs'), f], {
        stdio: ['pipe', 'pipe', 'inherit'],
      })
      let out = ''
      const waitFor = (word: string) =>
        new Promise<void>((resolve, reject) => {
          const check = () => out.includes(word) && resolve()
          child.stdout.on('data', (d) => {
            out += d
            check()
          })
          child.on('exit', (code) => reject(new Error(`holder exited early (${code})`)))
          check()
        })
      const ready = waitFor('ready')
      ready.catch(() => {})
      return { child, ready, waitFor }
    }
    let worst = 0
    const ahead = [spawnHolder(), spawnHolder()]
    for (let i = 0; i < 200; i++) {
      p.transaction(() => {
        p.willWrite(off(), 8)
        p.mem.setU64(off(), i + 1)
      })
      const pages = p.stats().pageCount
      const h = ahead.shift()!
      if (i + ahead.length < 199) ahead.push(spawnHolder())
      await h.ready
      h.child.stdin.write('go\n')
      await h.waitFor('locked')
      h.child.removeAllListeners('exit')
      const dead = new Promise((r) => h.child.on('exit', r))
      h.child.kill('SIGKILL')
      await dead
      const t0 = performance.now()
      const flags = p.begin()
      const dt = performance.now() - t0
      worst = Math.max(worst, dt)
      expect(dt).toBeLessThan(1000)
      expect(flags & BEGIN_RECOVERED).toBe(BEGIN_RECOVERED)
      expect(p.mem.u64(off())).toBe(i + 1)
      expect(p.mem.u64(off() + 8)).toBe(0)
      expect(p.slot(4)).toBe(0)
      expect(p.stats().pageCount).toBe(pages)
      p.commit()
    }
    expect(ahead).toEqual([])
    expect(p.check()).toEqual([])
    p.close()
    console.log(`lock-holder death: worst next-locker wait ${worst.toFixed(2)} ms over 200 kills`)
  }, 240_000)
})
