#!/usr/bin/env node
// Dict iteration through the proxy: Object.keys, Object.entries, for…in + d[k] and
// {...spread} over a dict of N string keys → numbers, each next to the same operation
// on a plain JS object (the ratio is what to compare between runs; absolute times
// depend on the machine's load).
//
//   node packages/persist/bench/iterate-dict.mjs [--n 100000] [--rounds 5]
//
// Each measurement runs in its own turn (the per-turn transaction is part of the
// cost, as in an application); prints the median of --rounds runs in ms.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from '@persist/persist'

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : def
}
const N = arg('n', 100_000)
const ROUNDS = arg('rounds', 5)
const turn = () => new Promise((r) => setImmediate(r))

const dir = mkdtempSync(join(tmpdir(), 'persist-iter-'))
const store = open(join(dir, 'iter.persist'))
const plain = {}
let expected = 0
for (let i = 0; i < N; i++) {
  plain[`key${i}`] = i
  expected += i
}
store.transaction(() => {
  store.root.dict = plain
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
console.log(`dict of ${N.toLocaleString('en-US')} entries, median of ${ROUNDS} rounds (ms)`)
console.log('operation          persist    plain   ratio (plain/persist)')
for (const [name, fn] of Object.entries(ops)) {
  const tp = []
  const tj = []
  for (let r = 0; r < ROUNDS; r++) {
    await turn()
    let t0 = performance.now()
    const got = fn(store.root.dict)
    tp.push(performance.now() - t0)
    if (got !== want[name]) throw new Error(`${name}: got ${got}, expected ${want[name]}`)
    await turn()
    t0 = performance.now()
    fn(plain)
    tj.push(performance.now() - t0)
  }
  const p = median(tp)
  const j = median(tj)
  console.log(
    `${name.padEnd(16)} ${p.toFixed(1).padStart(9)} ${j.toFixed(1).padStart(8)}   ${(j / p).toFixed(3)}×`,
  )
}
store.close()
rmSync(dir, { recursive: true, force: true })
