// Loads our layers for the workloads, probing that each really works before a
// workload relies on it. While a layer does not exist yet (or fails its probe),
// the workload prints "not available yet: <reason>" for our rows; peers still run.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const firstLine = (e) => String(e?.message ?? e).split('\n')[0]

async function tryImport(name) {
  try {
    return { mod: await import(name) }
  } catch (e) {
    return { reason: `${name} cannot be loaded (${firstLine(e)})` }
  }
}

function withTmp(fn) {
  const dir = mkdtempSync(join(tmpdir(), 'persist-probe-'))
  try {
    return fn(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** @persist/persist: { open, mod } or { reason }. */
export async function loadPersist() {
  const { mod, reason } = await tryImport('@persist/persist')
  if (!mod) return { reason }
  if (typeof mod.open !== 'function') return { reason: '@persist/persist does not export open() yet' }
  try {
    withTmp((dir) => {
      const store = mod.open(join(dir, 'probe.persist'))
      try {
        store.transaction(() => {
          store.root.x = 1
          store.root.d = { a: { b: 2 } }
        })
        if (store.root.x !== 1 || store.root.d.a.b !== 2) throw new Error('root.x did not read back')
      } finally {
        store.close()
      }
    })
  } catch (e) {
    return { reason: `@persist/persist probe failed: ${firstLine(e)}` }
  }
  return { mod, open: mod.open }
}

/** @persist/pager: { openPager, mod } or { reason }. */
export async function loadPager() {
  const { mod, reason } = await tryImport('@persist/pager')
  if (!mod) return { reason }
  if (typeof mod.openPager !== 'function') return { reason: '@persist/pager does not export openPager() yet' }
  return { mod, openPager: mod.openPager }
}

/** @persist/heap: { openHeap, mod } or { reason }. */
export async function loadHeap() {
  const { mod, reason } = await tryImport('@persist/heap')
  if (!mod) return { reason }
  if (typeof mod.openHeap !== 'function') return { reason: '@persist/heap does not export openHeap() yet' }
  return { mod, openHeap: mod.openHeap }
}

/** Versions of our packages, for the report. */
export async function ourVersions() {
  const out = {}
  for (const name of ['@persist/pager', '@persist/heap', '@persist/objects', '@persist/persist']) {
    try {
      const url = new URL(`../node_modules/${name}/package.json`, import.meta.url)
      out[name] = JSON.parse(readFileSync(url, 'utf8')).version
    } catch {
      out[name] = 'missing'
    }
  }
  return out
}
