// 7.x docs/api.md documents every runtime export of every package (a heading that
// names it), so the reference cannot silently fall behind the code.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { expect, it } from 'vitest'
import { REPO } from './helpers.js'

const PACKAGES = ['pager', 'heap', 'objects', 'persist', 'pbase', 'cli']

it('7.1 every runtime export of every package has a heading in docs/api.md', async () => {
  const doc = readFileSync(join(REPO, 'docs/api.md'), 'utf8')
  const headings = doc.split('\n').filter((l) => /^#{2,4} /.test(l))
  const missing: string[] = []
  for (const p of PACKAGES) {
    const mod = await import(pathToFileURL(join(REPO, 'packages', p, 'dist/index.js')).href)
    const section = doc.indexOf(`## @persist/${p}`)
    expect(section, `docs/api.md has a "## @persist/${p}" section`).toBeGreaterThan(0)
    for (const name of Object.keys(mod)) {
      const re = new RegExp(`[\`\\s.(]${name.replace(/\$/g, '\\$')}[\`<(:\\s]`)
      if (!headings.some((h) => re.test(h))) missing.push(`@persist/${p}: ${name}`)
    }
  }
  expect(missing).toEqual([])
})

it('7.2 every public method of Store, Objects, Heap and Pager is named in a heading', async () => {
  const doc = readFileSync(join(REPO, 'docs/api.md'), 'utf8')
  const headings = doc.split('\n').filter((l) => /^#{3,4} /.test(l))
  const classes: [string, string, string][] = [
    ['persist', 'Store', 'store'],
    ['objects', 'Objects', 'o'],
    ['heap', 'Heap', 'heap'],
    ['pager', 'Pager', 'pager'],
  ]
  const missing: string[] = []
  let checked = 0
  for (const [p, cls, v] of classes) {
    const mod = await import(pathToFileURL(join(REPO, 'packages', p, 'dist/index.js')).href)
    const proto = mod[cls].prototype
    const dist = join(REPO, 'packages', p, 'dist')
    const dts = readdirSync(dist)
      .filter((f) => f.endsWith('.d.ts'))
      .map((f) => readFileSync(join(dist, f), 'utf8'))
      .join('\n')
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor' || name.startsWith('_')) continue
      const d = Object.getOwnPropertyDescriptor(proto, name)!
      // TypeScript `private`/`protected`/@internal members are ordinary properties at
      // run time: only what the .d.ts declares public counts.
      if (
        new RegExp(`(private|protected) (readonly )?${name}\\b`).test(dts) ||
        new RegExp(`@internal[^\\n]*\\*/\\s*(get )?${name}\\b`).test(dts)
      )
        continue
      if (!d) continue
      checked++
      if (!headings.some((h) => h.includes(`${v}.${name}`))) missing.push(`${cls}.${name}`)
    }
  }
  expect(missing).toEqual([])
  expect(checked).toBeGreaterThan(60) // the filter above did not skip the real methods
})
