// 3.x compact and gc on real files; 4.x watch sees commits of another process.
import { spawn } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CLI, cli, cliSpawn, FIXTURES, fixture, tmpDir, waitFor } from './helpers.js'

const { dir, cleanup } = tmpDir('compact')
afterAll(cleanup)

describe('3 compact', () => {
  it('3.1 keeps the data and shrinks the file after deletes', () => {
    const store = join(dir, 'c.persist')
    fixture('make-store.mjs', [store, 'bulk', '400', '16']) // 400 keys × 16 KiB
    fixture('make-store.mjs', [store, 'delete-half'])
    const before = cli(['dump', store]).stdout
    const sizeBefore = statSync(store).size
    const r = cli(['compact', store])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^compacted .*: [\d.]+ MiB → [\d.]+ MiB \(200 root entries\)\n$/)
    const sizeAfter = statSync(store).size
    expect(sizeAfter).toBeLessThan(sizeBefore * 0.7)
    expect(cli(['dump', store]).stdout).toBe(before)
    expect(cli(['check', store]).code).toBe(0)
    expect(existsSync(`${store}.compact-tmp`)).toBe(false)
  })

  it('3.2 keeps shared records shared, cycles and class objects', () => {
    const store = join(dir, 's.persist')
    fixture('make-store.mjs', [store, 'sample'])
    const before = cli(['dump', store]).stdout
    const statsBefore = JSON.parse(cli(['stats', '--json', store]).stdout).objects
    expect(cli(['compact', store]).code).toBe(0)
    expect(cli(['dump', store]).stdout).toBe(before)
    expect(JSON.parse(cli(['stats', '--json', store]).stdout).objects).toEqual(statsBefore)
  })

  it('3.3 refuses while another process has the store open, and leaves it untouched', async () => {
    const store = join(dir, 'busy.persist')
    fixture('make-store.mjs', [store, 'sample'])
    const holder = spawn(process.execPath, [join(FIXTURES, 'hold-open.mjs'), store], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    try {
      let ready = ''
      holder.stdout.on('data', (d) => {
        ready += d
      })
      await waitFor(() => ready.includes('open'), 10_000, 'holder to open the store')
      const size = statSync(store).size
      const r = cli(['compact', store])
      expect(r.code).toBe(3)
      expect(r.stderr).toMatch(
        /^persist: .* is open in another process .*close it there first.* \(PERSIST_LOCKED\)\n$/,
      )
      expect(statSync(store).size).toBe(size)
      expect(existsSync(`${store}.compact-tmp`)).toBe(false)
    } finally {
      holder.kill('SIGKILL')
      await new Promise((r) => holder.on('close', r))
    }
    expect(cli(['compact', store]).code).toBe(0) // once it is gone, compact proceeds
  })
})

describe('3 compact, durability full', () => {
  it("3.5 a 'full' store: data kept, the old redo log removed, the file opens in 'full' mode again", () => {
    const store = join(dir, 'full.persist')
    fixture('make-full.mjs', [store])
    expect(existsSync(`${store}-wal`)).toBe(true)
    const before = cli(['dump', store]).stdout
    const r = cli(['compact', store])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(existsSync(`${store}-wal`)).toBe(false) // its records named offsets of the old layout
    expect(cli(['dump', store]).stdout).toBe(before)
    expect(fixture('make-full.mjs', [store]).size).toBe(100) // usable in 'full' mode again
    expect(cli(['check', store]).code).toBe(0)
  })
})

describe('3 compact, killed', () => {
  it('3.4 kill -9 in the middle of a compact leaves the original intact; the next compact cleans up', async () => {
    const store = join(dir, 'k.persist')
    fixture('make-store.mjs', [store, 'bulk', '3000', '4']) // 3000 keys × 4 KiB: a copy that takes a while
    const before = cli(['dump', '--ndjson', store]).stdout
    const size = statSync(store).size
    const tmp = `${store}.compact-tmp`
    const child = spawn(process.execPath, [CLI, 'compact', store], { stdio: 'ignore' })
    await waitFor(() => existsSync(tmp) && statSync(tmp).size > 2_000_000, 60_000, 'the copy to be under way')
    child.kill('SIGKILL')
    await new Promise((r) => child.on('close', r))
    expect(statSync(store).size).toBe(size)
    expect(cli(['check', store]).code).toBe(0) // the dead compact held the lock: recovery is clean
    expect(cli(['dump', '--ndjson', store]).stdout).toBe(before)
    expect(existsSync(tmp)).toBe(true) // left behind by the kill…
    const r = cli(['compact', store])
    expect(r.code).toBe(0)
    expect(existsSync(tmp)).toBe(false) // …and removed by the next compact
    expect(cli(['dump', '--ndjson', store]).stdout).toBe(before)
  })
})

describe('4 watch', () => {
  it('4.1 prints a line for a change committed by another process, and nothing for other sub-trees', async () => {
    const store = join(dir, 'w.persist')
    fixture('make-store.mjs', [store, 'sample'])
    const w = cliSpawn(['watch', '--interval', '10', store, 'people'])
    try {
      await waitFor(() => w.lines.length >= 1, 10_000, 'watch to start')
      expect(w.lines[0]).toMatch(/^watching people \(txid \d+\): is a dict of 2$/)
      fixture('make-store.mjs', [store, 'set', 'unrelated', '1']) // outside people: no line
      fixture('set-path.mjs', [store, 'people', 'bob', '{"name":"Bob","age":40}'])
      await waitFor(() => w.lines.length >= 2, 10_000, 'the change line')
      expect(w.lines[1]).toMatch(/^\S+Z txid \d+ set people\.bob \{"name":"Bob","age":40\}$/)
      fixture('set-path.mjs', [store, 'people', 'bob'])
      await waitFor(() => w.lines.length >= 3, 10_000, 'the delete line')
      expect(w.lines[2]).toMatch(/^\S+Z txid \d+ delete people\.bob$/)
      expect(w.lines.length).toBe(3)
    } finally {
      w.child.kill('SIGINT')
    }
    const code = await new Promise((r) => w.child.on('close', r))
    expect(code).toBe(0) // Ctrl-C is the normal end of watch
  })
})
