// Views of the mapping and V8's external-memory accounting (native/v8_window.h).
// V8 counts an ordinary external ArrayBuffer's length as external memory and runs
// full GCs when that count jumps; the pager's views are made uncounted when Node's
// own headers were available at build time. Both paths are exercised here: the
// default one in this process, the Node-API fallback in a child with
// PERSIST_V8_WINDOWS=0.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadNative, openPager } from '@persist/pager'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const pkgRoot = dirname(dirname(fileURLToPath(import.meta.url)))
const nodeInclude = process.env.PERSIST_NODE_INCLUDE ?? resolve(process.execPath, '../../include/node')
const MiB = 2 ** 20

// Child: opens `file`, reports external memory before/after and whether a view kept
// past close() is detached; reads and writes through the views in between.
const CHILD = `
const { openPager } = await import('@persist/pager')
const file = process.argv[1]
const ext = () => process.memoryUsage().external
const before = ext()
const p = openPager(file)
const opened = ext()
p.begin(); p.mem.setU64(4096 * 300, 0xabcdef); p.commit()
const read = p.mem.u64(4096 * 300)
const kept = p.mem.bytes(0, 16)
p.close()
console.log(JSON.stringify({ grew: opened - before, read, keptAfterClose: kept.length }))
`

function runChild(file: string, env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, file], {
    cwd: pkgRoot,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  })
  expect(r.status, r.stderr).toBe(0)
  return JSON.parse(r.stdout.trim()) as { grew: number; read: number; keptAfterClose: number }
}

describe('store views and V8 external memory', () => {
  const dir = tempDir()
  const file = join(dir, 'views.pst')
  // a 256 MiB store: far above V8's 64 MiB external-memory soft limit
  const p = openPager(file)
  p.begin()
  p.allocPages((256 * MiB) / 4096)
  p.commit()
  const mapped = p.stats().mappedBytes
  p.close()

  it('the addon makes uncounted views exactly when Node headers were there at build time', () => {
    const mod = loadNative<{ uncountedViews: boolean }>(pkgRoot, 'pager', 3)
    expect(mod.uncountedViews).toBe(existsSync(join(nodeInclude, 'v8.h')))
  })

  it.runIf(existsSync(join(nodeInclude, 'v8.h')))(
    'default views: opening a 256 MiB store adds nothing to V8 external memory',
    () => {
      const r = runChild(file, {})
      expect(mapped).toBeGreaterThanOrEqual(256 * MiB)
      expect(r.grew).toBeLessThan(8 * MiB)
      expect(r.read).toBe(0xabcdef)
      expect(r.keptAfterClose).toBe(0) // detached at close: no view into unmapped memory
    },
  )

  it('PERSIST_V8_WINDOWS=0: Node-API views work the same and are counted', () => {
    const r = runChild(file, { PERSIST_V8_WINDOWS: '0' })
    expect(r.grew).toBeGreaterThanOrEqual(mapped) // the accounting the default path avoids
    expect(r.read).toBe(0xabcdef)
    expect(r.keptAfterClose).toBe(0)
  })
})
