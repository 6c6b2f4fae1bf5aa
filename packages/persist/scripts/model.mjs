#!/usr/bin/env node
// Model-based test of the persist API with fast-check `commands`.
//
//   node packages/persist/scripts/model.mjs --runs N [--minutes M] [--seed S] [--max-commands 25]
//
// The real system is a store driven by an executor CHILD process (so a crash step can
// kill -9 it); the model is a plain JS object. Commands: set, delete, push, pop,
// splice, a transaction that throws (no change), a nested transaction whose inner part
// throws (only the outer part stays), gc, a full compare (toJS(root) equals the model
// and check() == []), close + reopen, crash mid-turn (the executor starts a turn that
// writes, reports, and spins; it is killed: the model is unchanged), and crash after a
// commit (killed right after the commit was reported: the model is changed). After a
// crash a new executor reopens the same file. fast-check shrinks failures to a minimal
// command list, printed with the seed. Exits 1 on a failure.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { diff, JsonChild, parseArgs, rmDir, serveJsonLines, tempDir } from './lib.mjs'

const SELF = fileURLToPath(import.meta.url)

// ---- executor ---------------------------------------------------------------------

async function executor() {
  const { open, toJS } = await import('@persist/persist')
  let store
  let file
  const INNER = new Error('inner')
  const ABORT = new Error('abort')
  await serveJsonLines((c) => {
    switch (c.op) {
      case 'open':
        file = c.file
        store = open(file)
        return { ok: true }
      case 'reopen':
        store.close()
        store = open(file)
        return { ok: true }
      case 'close':
        store?.close()
        store = undefined
        return { ok: true }
      case 'set':
        store.root[c.key] = c.value
        return { ok: true }
      case 'delete':
        return { ok: true, result: delete store.root[c.key] }
      case 'push':
        return { ok: true, result: store.root[c.key].push(c.value) }
      case 'pop': {
        const v = store.root[c.key].pop()
        return { ok: true, result: toJS(v) ?? null }
      }
      case 'splice':
        // the removed elements are freed at the end of the turn: snapshot them now
        return { ok: true, result: store.root[c.key].splice(c.start, c.del, ...c.items).map((v) => toJS(v)) }
      case 'abort':
        try {
          store.transaction(() => {
            store.root[c.key] = c.value
            throw ABORT
          })
        } catch (e) {
          if (e !== ABORT) throw e
        }
        return { ok: true }
      case 'nested':
        store.transaction(() => {
          store.root[c.outer] = c.value
          try {
            store.transaction(() => {
              store.root[c.inner] = c.value2
              delete store.root[c.outer]
              throw INNER
            })
          } catch (e) {
            if (e !== INNER) throw e
          }
        })
        return { ok: true }
      case 'gc':
        return { ok: true, result: store.gc() }
      case 'compare':
        return { ok: true, state: toJS(store.root), problems: store.check() }
      case 'crash-mid-turn': {
        const root = store.root
        root[c.key] = c.value
        delete root[c.other]
        process.stdout.write(`${JSON.stringify({ ok: true, spinning: true })}\n`)
        for (;;) {} // killed here, inside the turn
      }
      case 'crash-after-commit':
        store.root[c.key] = c.value
        return new Promise((resolve) => queueMicrotask(() => queueMicrotask(() => resolve({ ok: true })))) // after the turn's commit
      default:
        throw new Error(`unknown op ${c.op}`)
    }
  })
}

// ---- parent --------------------------------------------------------------------------

const KEYS = ['a', 'b', 'c', 'd', 'e']
const leaf = fc.oneof(
  fc.integer({ min: -1e9, max: 1e9 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Object.is(x, -0)),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.boolean(),
  fc.constant(null),
)
const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom('x', 'y', 'z', 'k1', '0', 'w'), tie('v'), { maxKeys: 3 }),
  ),
})).v
const listValue = fc.array(value, { maxLength: 5 })

class Exec {
  constructor(dir) {
    this.dir = dir
    this.spare = new JsonChild(SELF, ['--executor'])
  }
  /** A fresh executor (the pre-spawned spare) opened on the file. */
  async fresh(file) {
    this.cur = this.spare
    this.spare = new JsonChild(SELF, ['--executor'])
    const r = await this.cur.request({ op: 'open', file })
    if (!r.ok) throw new Error(`executor could not open: ${JSON.stringify(r)}`)
  }
  async req(cmd) {
    const r = await this.cur.request(cmd, 60_000)
    if (r.died)
      throw new Error(`executor died on ${cmd.op}: ${r.hang ? 'hang' : (r.signal ?? r.code)} ${r.stderr}`)
    if (r.ok === false) throw new Error(`executor error on ${cmd.op}: ${r.detail}`)
    return r
  }
  async crash(cmd) {
    const r = await this.cur.request(cmd, 60_000)
    if (r.died || r.ok === false) throw new Error(`executor failed on ${cmd.op}: ${JSON.stringify(r)}`)
    this.cur.proc.kill('SIGKILL')
    await new Promise((res) => (this.cur.dead ? res() : this.cur.proc.once('close', res)))
  }
  close() {
    this.cur?.close()
    this.spare.proc.kill('SIGKILL')
  }
}

const clone = (v) => structuredClone(v)
const expectSame = (got, want, what) => {
  const d = diff(got, want)
  if (d) throw new Error(`${what}: store and model differ: ${d}`)
}

class SetCmd {
  constructor(key, value) {
    Object.assign(this, { key, value })
  }
  check() {
    return true
  }
  async run(m, r) {
    await r.ex.req({ op: 'set', key: this.key, value: this.value })
    m.root[this.key] = clone(this.value)
  }
  toString() {
    return `set(${this.key}, ${JSON.stringify(this.value)})`
  }
}
class DeleteCmd {
  constructor(key) {
    this.key = key
  }
  check() {
    return true
  }
  async run(m, r) {
    await r.ex.req({ op: 'delete', key: this.key })
    delete m.root[this.key]
  }
  toString() {
    return `delete(${this.key})`
  }
}
class PushCmd {
  constructor(key, value) {
    Object.assign(this, { key, value })
  }
  check(m) {
    return Array.isArray(m.root[this.key])
  }
  async run(m, r) {
    const res = await r.ex.req({ op: 'push', key: this.key, value: this.value })
    const want = m.root[this.key].push(clone(this.value))
    if (res.result !== want) throw new Error(`push returned ${res.result}, model ${want}`)
  }
  toString() {
    return `push(${this.key}, ${JSON.stringify(this.value)})`
  }
}
class PopCmd {
  constructor(key) {
    this.key = key
  }
  check(m) {
    return Array.isArray(m.root[this.key])
  }
  async run(m, r) {
    const res = await r.ex.req({ op: 'pop', key: this.key })
    expectSame(res.result, m.root[this.key].pop() ?? null, `pop(${this.key})`)
  }
  toString() {
    return `pop(${this.key})`
  }
}
class SpliceCmd {
  constructor(key, start, del, items) {
    Object.assign(this, { key, start, del, items })
  }
  check(m) {
    return Array.isArray(m.root[this.key])
  }
  async run(m, r) {
    const res = await r.ex.req({
      op: 'splice',
      key: this.key,
      start: this.start,
      del: this.del,
      items: this.items,
    })
    expectSame(
      res.result,
      m.root[this.key].splice(this.start, this.del, ...clone(this.items)),
      `splice(${this.key})`,
    )
  }
  toString() {
    return `splice(${this.key}, ${this.start}, ${this.del}, ${JSON.stringify(this.items)})`
  }
}
class AbortCmd {
  constructor(key, value) {
    Object.assign(this, { key, value })
  }
  check() {
    return true
  }
  async run(_m, r) {
    await r.ex.req({ op: 'abort', key: this.key, value: this.value })
  }
  toString() {
    return `abortedTxn(${this.key})`
  }
}
class NestedCmd {
  constructor(outer, inner, value, value2) {
    Object.assign(this, { outer, inner, value, value2 })
  }
  check() {
    return true
  }
  async run(m, r) {
    await r.ex.req({
      op: 'nested',
      outer: this.outer,
      inner: this.inner,
      value: this.value,
      value2: this.value2,
    })
    m.root[this.outer] = clone(this.value)
  }
  toString() {
    return `nested(outer ${this.outer}=${JSON.stringify(this.value)}, inner ${this.inner} throws)`
  }
}
class GcCmd {
  check() {
    return true
  }
  async run(_m, r) {
    const res = await r.ex.req({ op: 'gc' })
    if (res.result.freedObjects !== 0)
      throw new Error(
        `gc() freed ${res.result.freedObjects} objects: refcounting left garbage without cycles`,
      )
  }
  toString() {
    return 'gc()'
  }
}
class CompareCmd {
  check() {
    return true
  }
  async run(m, r) {
    const res = await r.ex.req({ op: 'compare' })
    if (res.problems.length) throw new Error(`check(): ${res.problems.join('; ')}`)
    expectSame(res.state, m.root, 'compare')
  }
  toString() {
    return 'compare()'
  }
}
class ReopenCmd {
  check() {
    return true
  }
  async run(_m, r) {
    await r.ex.req({ op: 'reopen' })
  }
  toString() {
    return 'closeAndReopen()'
  }
}
class CrashMidTurnCmd {
  constructor(key, other, value) {
    Object.assign(this, { key, other, value })
  }
  check() {
    return true
  }
  async run(_m, r) {
    await r.ex.crash({ op: 'crash-mid-turn', key: this.key, other: this.other, value: this.value })
    await r.ex.fresh(r.file)
  }
  toString() {
    return `crashMidTurn(set ${this.key}, delete ${this.other})`
  }
}
class CrashAfterCommitCmd {
  constructor(key, value) {
    Object.assign(this, { key, value })
  }
  check() {
    return true
  }
  async run(m, r) {
    await r.ex.crash({ op: 'crash-after-commit', key: this.key, value: this.value })
    m.root[this.key] = clone(this.value)
    await r.ex.fresh(r.file)
  }
  toString() {
    return `crashAfterCommit(set ${this.key})`
  }
}

async function parent(argv) {
  const o = parseArgs(argv, { runs: 200, seed: 0, 'max-commands': 25, minutes: 0 })
  const seed = o.seed || (Date.now() % 1e9) + 1
  const dir = tempDir('persist-model-')
  mkdirSync(dir, { recursive: true })
  const ex = new Exec(dir)
  const key = fc.constantFrom(...KEYS)
  const cmds = [
    fc.tuple(key, value).map(([k, v]) => new SetCmd(k, v)),
    fc.tuple(key, listValue).map(([k, v]) => new SetCmd(k, v)),
    key.map((k) => new DeleteCmd(k)),
    fc.tuple(key, value).map(([k, v]) => new PushCmd(k, v)),
    key.map((k) => new PopCmd(k)),
    fc
      .tuple(
        key,
        fc.integer({ min: -6, max: 8 }),
        fc.integer({ min: 0, max: 4 }),
        fc.array(value, { maxLength: 3 }),
      )
      .map(([k, s, d, it]) => new SpliceCmd(k, s, d, it)),
    fc.tuple(key, value).map(([k, v]) => new AbortCmd(k, v)),
    fc.tuple(key, key, value, value).map(([a, b, v, w]) => new NestedCmd(a, b, v, w)),
    fc.constant(new GcCmd()),
    fc.constant(new CompareCmd()),
    fc.constant(new ReopenCmd()),
    fc.tuple(key, key, value).map(([k, x, v]) => new CrashMidTurnCmd(k, x, v)),
    fc.tuple(key, value).map(([k, v]) => new CrashAfterCommitCmd(k, v)),
  ]
  let runNo = 0
  const t0 = Date.now()
  let crashes = 0
  let failed
  try {
    await fc.assert(
      fc.asyncProperty(fc.commands(cmds, { maxCommands: o['max-commands'] }), async (commands) => {
        const file = join(dir, `run${runNo++}.persist`)
        // one executor serves run after run; only crash steps replace it
        if (!ex.cur || ex.cur.dead) await ex.fresh(file)
        else await ex.req({ op: 'open', file })
        const model = { root: {} }
        const real = { ex, file }
        await fc.asyncModelRun(() => ({ model, real }), commands)
        for (const c of commands)
          if (c.hasRan && (c.cmd instanceof CrashMidTurnCmd || c.cmd instanceof CrashAfterCommitCmd))
            crashes++
        await new CompareCmd().run(model, real) // the final state, always
        await ex.req({ op: 'close' })
        rmDir(file)
      }),
      {
        numRuns: o.runs,
        seed,
        verbose: 1,
        // --minutes: stop (as a pass) when the time is up; the runs done are printed
        ...(o.minutes ? { interruptAfterTimeLimit: o.minutes * 60_000, markInterruptAsFailure: false } : {}),
      },
    )
  } catch (e) {
    failed = e
  }
  ex.close()
  rmDir(dir)
  console.log(
    `model: ${runNo} runs executed (asked ${o.runs}, incl. shrinking), ${crashes} crash steps, seed ${seed}, ${((Date.now() - t0) / 1000).toFixed(1)} s: ${failed ? 'FAILED' : 'ok'}`,
  )
  if (failed) {
    console.log(String(failed.message ?? failed).slice(0, 6000))
    process.exitCode = 1
  }
}

const role = process.argv[2]
if (role === '--executor') await executor()
else await parent(process.argv.slice(2))
