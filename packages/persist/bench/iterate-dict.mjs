#!/usr/bin/env node
// Dict iteration through the proxy: Object.keys, Object.entries, for…in + d[k] and
// {...spread} over a dict of N string keys → numbers, each next to the same operation
// on a plain JS object (the ratio is what to compare between runs; absolute times
// depend on the machine's load).
//
//   node packages/persist/bench/iterate-dict.mjs [--n 100000] [--rounds 5] [--compare DIST]
//
// Each measurement runs in its own turn (the per-turn transaction is part of the
// cost, as in an application); prints the median of --rounds runs in ms.
// --compare /path/to/another/build/of/persist/dist/index.js adds a column for that
// build (e.g. the previous commit's), measured interleaved in the same process, so a
// loaded machine affects both alike.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from '@persist/persist'

const argStr = (name) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : undefined
}
const arg = (name, def) => (argStr(name) === undefined ? def : Number(argStr(name)))
const N = arg('n', 100_000)
const ROUNDS = arg('rounds', 5)
const turn = () => new Promise((r) => setImmediate(r))

const dir = mkdtempSync(join(tmpdir(), 'persist-iter-'))
const plain = {}
let expected = 0
for (let i = 0; i < N; i++) {
  plain[`key${i}`] = i
  expected += i
}
const builds = [['persist', open]]
if (argStr('compare')) builds.push(['compared', (await import(argStr('compare'))).open])
const stores = builds.map(([name, openIt]) => {
  const st = openIt(join(dir, `${name}.persist`))
  st.transaction(() => {
    st.root.dict = plain
  })
  return st
})
await turn()

const ops = {
  'Object.keys': (d) => Object.keys(d).length,
  'Object.entries': (d) => {
    let s = 0
    for (const [, v] of Object.entries(d)) s += v
    return s
  },
  'for…in + d[k]': (d) => {
    let s = 0
    for (const k in d) s += d[k]
    return s
  },
  '{...spread}': (d) => Object.keys({ ...d }).length,
}
const want = { 'Object.keys': N, 'Object.entries': expected, 'for…in + d[k]': expected, '{...spread}': N }

const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1]
console.log(
  `dict of ${N.toLocaleString('en-US')} entries, median of ${ROUNDS} rounds (ms); ratio = plain / build`,
)
console.log(
  [
    'operation'.padEnd(16),
    ...builds.map(([b]) => b.padStart(9)),
    'plain'.padStart(8),
    ...builds.map(([b]) => `ratio ${b}`.padStart(16)),
  ].join(' '),
)
for (const [name, fn] of Object.entries(ops)) {
  const ts = builds.map(() => [])
  const tj = []
  for (let r = 0; r < ROUNDS; r++) {
    for (let b = 0; b < stores.length; b++) {
      await turn()
      const t0 = performance.now()
      const got = fn(stores[b].root.dict)
      ts[b].push(performance.now() - t0)
      if (got !== want[name]) throw new Error(`${builds[b][0]} ${name}: got ${got}, expected ${want[name]}`)
    }
    await turn()
    const t0 = performance.now()
    fn(plain)
    tj.push(performance.now() - t0)
  }
  const ms = ts.map(median)
  const j = median(tj)
  console.log(
    [
      name.padEnd(16),
      ...ms.map((m) => m.toFixed(1).padStart(9)),
      j.toFixed(1).padStart(8),
      ...ms.map((m) => `${(j / m).toFixed(3)}×`.padStart(16)),
    ].join(' '),
  )
}
for (const st of stores) st.close()
rmSync(dir, { recursive: true, force: true })
