#!/usr/bin/env node
// Kill -9 harness for @persist/objects.
//
//   node scripts/crash.mjs --trials N [--seed S] [--jobs J] [--verbose]
//
// Each trial: a child process opens a fresh store and runs seeded random
// transactions of object operations (test/fixtures/model.mjs), writing "C <t>" to
// stdout (synchronously) after each commit. The parent kills it with SIGKILL at a
// random moment, reopens the store, and checks that the graph equals the model
// replayed to the last reported commit t (or t+1: the kill may land between the
// commit and the report), that check() is clean once gc() collected unreachable
// cycles, and that the store still accepts writes.
// Prints "N trials, C corrupt, L lost" and exits non-zero on any failure.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { Objects } from '@persist/objects'
import { applyOp, rng, txnOps } from '../test/fixtures/model.mjs'

const self = fileURLToPath(import.meta.url)
const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}

if (args[0] === '--child') {
  const [, path, seedStr] = args
  const o = Objects.open(path)
  const r = rng(Number(seedStr))
  const model = {}
  writeSync(1, 'R\n')
  for (let t = 1; t < 1e6; t++) {
    const ops = txnOps(r)
    o.begin()
    for (const op of ops) applyOp(model, op, o)
    if (t % 50 === 0) o.gc()
    o.commit()
    writeSync(1, `C ${t}\n`)
  }
  process.exit(0)
}

function modelAt(seed, t) {
  const r = rng(seed)
  const model = {}
  for (let i = 0; i < t; i++) for (const op of txnOps(r)) applyOp(model, op, null)
  return model
}

function runTrial(dir, seed, killAfterMs) {
  const path = join(dir, `t${seed}.persist`)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [self, '--child', path, String(seed)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    let timer
    child.stdout.on('data', (d) => {
      out += d
      if (timer === undefined && out.startsWith('R\n'))
        timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    })
    child.stderr.on('data', (d) => {
      err += d
    })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (signal !== 'SIGKILL')
        return reject(new Error(`child exited (${code}, ${signal}) before the kill: ${err}`))
      const lines = out
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('C '))
      const t = lines.length ? Number(lines[lines.length - 1].slice(2)) : 0
      resolve({ path, t })
    })
  })
}

function verify(path, seed, t) {
  const o = Objects.open(path)
  try {
    o.begin()
    const got = o.toJSRecord(o.rootOff)
    const okAt = isDeepStrictEqual(got, modelAt(seed, t))
      ? t
      : isDeepStrictEqual(got, modelAt(seed, t + 1))
        ? t + 1
        : -1
    o.gc()
    o.commit()
    const problems = o.check()
    // The store stays writable after recovery.
    o.begin()
    o.dictSet(o.rootOff, 'after', { ok: [1, 2, 3] })
    o.commit()
    const problems2 = o.check()
    return { okAt, problems: [...problems, ...problems2] }
  } finally {
    o.close()
  }
}

export async function main(trials, seed0, verbose = false, jobs = 2) {
  const dir = mkdtempSync(join(tmpdir(), 'persist-objects-crash-'))
  let corrupt = 0
  let lost = 0
  let committed = 0
  let next = 0
  const worker = async () => {
    while (next < trials) {
      const i = next++
      const seed = seed0 + i
      const kr = rng(seed * 7 + 1)
      const { path, t } = await runTrial(dir, seed, 2 + Math.floor(kr(60)))
      committed += t
      const { okAt, problems } = verify(path, seed, t)
      if (okAt < 0) {
        lost++
        console.error(`trial ${i} (seed ${seed}): reopened graph matches neither commit ${t} nor ${t + 1}`)
      }
      if (problems.length) {
        corrupt++
        console.error(`trial ${i} (seed ${seed}): check(): ${problems.slice(0, 5).join('; ')}`)
      }
      if (verbose) console.log(`trial ${i}: ${t} commits reported, state at ${okAt}`)
      rmSync(path, { force: true })
    }
  }
  try {
    await Promise.all(Array.from({ length: jobs }, worker))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(
    `${trials} trials, ${corrupt} corrupt, ${lost} lost (${committed} transactions committed in total)`,
  )
  return { trials, corrupt, lost, committed }
}

if (process.argv[1] === self && args[0] !== '--child') {
  const trials = Number(opt('--trials', '20'))
  const seed = Number(opt('--seed', String(Date.now() % 100000)))
  const res = await main(trials, seed, args.includes('--verbose'), Number(opt('--jobs', '2')))
  process.exit(res.corrupt || res.lost ? 1 : 0)
}
