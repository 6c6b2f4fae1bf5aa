// The crash-matrix workloads. Each workload is written ONCE against a small context
// and runs twice: against a real store (ctx.model = false: proxies, real transactions)
// and against plain JS objects (ctx.model = true) to compute the expected state. Every
// step draws its random values from rng(mix(seed, step)), so the model after step k is
// rebuilt by replaying steps 0..k on plain objects.
//
// Rules for workload code:
//  - read through ctx.root / ctx.root2 each time (persist copies plain values in, so a
//    local plain object mutated after assignment would differ from the store);
//  - functions passed to ctx.nested(fn) must not draw random values: the model skips
//    them (they are rolled back), so draws would desynchronise the two runs;
//  - iterate keys in sorted order (Object.keys(...).sort()) so choices do not depend on
//    key order.
import { PBase, register } from '../../pbase/dist/index.js'

export class Person extends PBase {
  name = ''
  age = 0
  tags = []
  constructor(name = '', age = 0) {
    super()
    this.name = name
    this.age = age
  }
  birthday() {
    this.age += 1
  }
}
register(Person, 'rel.Person')

/** Size of one value of the file-growth workload (bytes); 7 of them pass 1 GiB. */
export const GROWTH_VALUE_BYTES = Number(process.env.REL_GROWTH_MIB || 160) * 1024 * 1024
const GROWTH_SLOTS = 7

// ---- value generators ---------------------------------------------------------

function scalar(r) {
  switch (r.int(12)) {
    case 0:
      return r.int(2_000_000_000) - 1_000_000_000
    case 1:
      return (r.int(2_000_000) - 1_000_000) / 64 + 0.5 / 64
    case 2:
      return r.word(r.int(12))
    case 3:
      return r.word(20 + r.int(300))
    case 4:
      return `€${r.word(r.int(6))}😀${r.word(r.int(40))}`
    case 5:
      return `\ud800${r.word(3)}\udfff`
    case 6:
      return null
    case 7:
      return r.bool()
    case 8:
      return BigInt(r.int(1_000_000_000)) * (r.bool() ? 1n : -1n)
    case 9:
      return BigInt(r.int(1_000_000_000) + 1) ** BigInt(2 + r.int(6))
    case 10:
      return new Date(r.int(2_000_000_000) * 1000)
    default: {
      const b = new Uint8Array(r.int(200))
      for (let i = 0; i < b.length; i++) b[i] = r.int(256)
      return b
    }
  }
}

function anyValue(r) {
  switch (r.int(6)) {
    case 0:
      return tree(r, 3 + r.int(20))
    case 1: {
      const a = new Float64Array(r.int(20))
      for (let i = 0; i < a.length; i++) a[i] = r.float() * 1e6
      return a
    }
    case 2: {
      const a = new Int32Array(r.int(20))
      for (let i = 0; i < a.length; i++) a[i] = r.int(1 << 30) - (1 << 29)
      return a
    }
    default:
      return scalar(r)
  }
}

/** A tree of about n nodes: dicts and lists of scalars (no sharing inside). */
export function tree(r, n) {
  let budget = n
  const build = (depth) => {
    budget--
    if (budget <= 0 || depth > 6 || r.bool(0.3)) return scalar(r)
    const width = 1 + r.int(6)
    if (r.bool(0.5)) {
      const a = []
      for (let i = 0; i < width && budget > 0; i++) a.push(build(depth + 1))
      return a
    }
    const o = {}
    for (let i = 0; i < width && budget > 0; i++) o[`f${r.int(50)}`] = build(depth + 1)
    return o
  }
  const top = {}
  while (budget > 0) top[`k${n - budget}`] = build(1)
  return top
}

function bigString(r) {
  const len = 256 * 1024 + r.int(3 * 1024 * 1024)
  const chunk = r.bool(0.8) ? r.word(37) : `${r.word(30)}€ü${r.word(5)}`
  return chunk.repeat(Math.ceil(len / chunk.length)).slice(0, len)
}

function keysOf(o) {
  return o ? Object.keys(o).sort() : []
}

/** A container reached by a random walk of up to `depth` steps from `o` (sorted keys). */
function walk(r, o, depth) {
  let cur = o
  for (let i = 0; i < depth; i++) {
    const ks = Array.isArray(cur) ? cur.map((_, j) => j) : keysOf(cur)
    const next = ks.length ? cur[r.pick(ks)] : undefined
    if (next === null || typeof next !== 'object' || ArrayBuffer.isView(next) || next instanceof Date) break
    cur = next
  }
  return cur
}

// ---- the workloads --------------------------------------------------------------

/**
 * name → { mode: 'turn' | 'txn', stores (1 | 2), init(ctx, r), step(ctx, r, k),
 *          summarize?(root, model), noLeak?, check?(store), weight? }
 * mode 'turn': the step is one synchronous turn committed by the turn rule;
 * mode 'txn': the step runs inside store.transaction().
 */
export const workloads = {
  'counter-turn': {
    mode: 'turn',
    noLeak: true,
    init(c) {
      c.root.n = 0
      c.root.m = 0
    },
    step(c) {
      c.root.n += 1
      c.root.m += 2
    },
  },

  'transfer-txn': {
    mode: 'txn',
    noLeak: true,
    init(c) {
      c.root.acct = Array.from({ length: 16 }, () => 1000)
    },
    step(c, r) {
      const t = 1 + r.int(8)
      for (let i = 0; i < t; i++) {
        const a = r.int(16)
        const b = r.int(16)
        const amt = r.int(50)
        c.root.acct[a] -= amt
        c.root.acct[b] += amt
      }
      if (r.bool(0.3)) {
        const a = r.int(16)
        c.nested(() => {
          c.root.acct[a] -= 1_000_000
          c.root.acct.push(1)
        })
      }
    },
  },

  'list-pushpop': {
    mode: 'turn',
    noLeak: true,
    init(c) {
      c.root.list = []
    },
    step(c, r) {
      const l = c.root.list
      const op = r.int(5)
      const n = 1 + r.int(5)
      if (op === 0 || op === 1) for (let i = 0; i < n; i++) l.push(r.bool(0.2) ? tree(r, 4) : scalar(r))
      else if (op === 2) for (let i = 0; i < n; i++) l.pop()
      else if (op === 3) l.unshift(scalar(r), r.int(100))
      else l.shift()
      while (l.length > 200) l.pop()
    },
  },

  'dict-churn': {
    mode: 'txn',
    noLeak: true,
    init(c) {
      c.root.d = {}
    },
    step(c, r) {
      const ops = 1 + r.int(20)
      for (let i = 0; i < ops; i++) {
        const key = r.bool(0.1) ? String(r.int(50)) : `k${r.int(300)}`
        if (r.bool(0.35)) delete c.root.d[key]
        else c.root.d[key] = r.bool(0.15) ? tree(r, 6) : scalar(r)
      }
    },
  },

  'big-strings': {
    mode: 'turn',
    noLeak: true,
    init(c) {
      c.root.s = {}
    },
    step(c, r) {
      const key = `s${r.int(4)}`
      if (r.bool(0.25)) delete c.root.s[key]
      else c.root.s[key] = bigString(r)
    },
  },

  'string-grow': {
    mode: 'turn',
    noLeak: true,
    init(c) {
      c.root.t = ''
      c.root.u = ''
    },
    step(c, r) {
      const chunk = r.bool(0.9) ? r.word(1 + r.int(20000)) : `Ω${r.word(r.int(3000))}`
      c.root.t += chunk
      if (c.root.t.length > 2_500_000) c.root.t = c.root.t.slice(0, r.int(1000))
      c.root.u = c.root.t.length % 7 === 0 ? c.root.t.slice(-50000) : c.root.u + chunk.slice(0, 10)
    },
  },

  'nested-throw': {
    mode: 'txn',
    noLeak: true,
    init(c) {
      c.root.a = { x: 0, y: 0, log: [] }
    },
    step(c, r, k) {
      c.root.a.x += 1
      const w = r.word(6)
      c.nested(() => {
        c.root.a.x += 100
        c.root.a.log.push('bad')
        c.root.tmp = { junk: w.repeat(2000), list: [1, 2, { deep: w }] }
      })
      c.tx(() => {
        c.root.a.y += 1
        c.nested(() => {
          c.root.a.y += 1000
          delete c.root.a.log
          c.root.a.z = [w]
        })
        c.root.a[`w${k % 5}`] = w
      })
      c.root.a.log.push(k)
      if (c.root.a.log.length > 40) c.root.a.log.shift()
    },
  },

  'file-growth': {
    mode: 'txn',
    weight: 0, // scheduled separately (see crash-matrix --growth-trials)
    noLeak: true,
    killWindowMs: 8000,
    init(c) {
      c.root.big = {}
    },
    step(c, r, k) {
      const i = k <= GROWTH_SLOTS ? k - 1 : r.int(GROWTH_SLOTS)
      const mark = 1 + r.int(255)
      if (k > GROWTH_SLOTS && r.bool(0.3)) {
        delete c.root.big[`b${i}`]
        return
      }
      if (c.model) {
        c.root.big[`b${i}`] = { $big: GROWTH_VALUE_BYTES, mark, ok: true }
        return
      }
      const b = new Uint8Array(GROWTH_VALUE_BYTES) // zeros except a few marks
      b[0] = mark
      b[GROWTH_VALUE_BYTES >> 1] = mark
      b[GROWTH_VALUE_BYTES - 1] = mark
      c.root.big[`b${i}`] = b
    },
    summarize(root, model) {
      if (model) return root
      const out = { big: {} }
      for (const key of Object.keys(root.big)) {
        const v = root.big[key]
        const n = v.length
        out.big[key] = {
          $big: n,
          mark: v[0],
          ok: v[n >> 1] === v[0] && v[n - 1] === v[0] && v[1] === 0 && v[n - 2] === 0 && v[n >> 2] === 0,
        }
      }
      return out
    },
  },

  'gc-cycles': {
    mode: 'txn',
    cycles: true,
    init(c) {
      c.root.keep = {}
      c.root.gcs = 0
    },
    step(c, r) {
      const op = r.int(5)
      const key = `c${r.int(6)}`
      if (op <= 1) {
        c.root.keep[key] = { name: r.word(5), kids: [] }
        const p = c.root.keep[key]
        p.self = p
        p.kids.push({ up: p, v: r.int(100) })
        if (r.bool(0.5)) p.kids.push({ up: p, sib: p.kids[0] })
      } else if (op === 2) {
        delete c.root.keep[key]
      } else if (op === 3) {
        const p = c.root.keep[key]
        if (p) c.root.keep[`alias${r.int(3)}`] = p.kids[0]
      } else {
        c.gc()
        c.root.gcs += 1
      }
    },
  },

  pbase: {
    mode: 'turn',
    noLeak: true,
    init(c) {
      c.root.people = {}
    },
    step(c, r) {
      const op = r.int(5)
      const people = c.root.people
      const keys = keysOf(people)
      if (op === 0 || keys.length === 0) {
        const name = `p${r.int(40)}`
        people[name] = new Person(name, r.int(90))
      } else if (op === 1) people[r.pick(keys)].birthday()
      else if (op === 2) people[r.pick(keys)].tags.push(r.word(4))
      else if (op === 3) delete people[r.pick(keys)]
      else {
        const p = people[r.pick(keys)]
        p.age = p.age * 2 + 1
        p.note = r.word(8)
      }
    },
    check(store) {
      for (const [k, v] of Object.entries(store.root.people ?? {}))
        if (!(v instanceof Person)) return `people.${k} is not a Person after reopen`
      return undefined
    },
  },

  'two-stores': {
    mode: 'turn',
    stores: 2,
    noLeak: true,
    init(c) {
      c.root.n = 0
      c.root.l = []
      c.root2.n = 0
      c.root2.l = []
    },
    step(c, r, k) {
      c.root.n += 1
      c.root2.n += 1
      c.root.l.push(k)
      c.root2.l.push({ k, w: r.word(4) })
      if (c.root.l.length > 20) c.root.l.shift()
      if (c.root2.l.length > 20) c.root2.l.shift()
    },
  },

  'delete-subtree': {
    mode: 'txn',
    noLeak: true,
    init(c) {
      c.root.trees = {}
    },
    step(c, r) {
      const key = `t${r.int(4)}`
      const op = r.int(4)
      if (op <= 1) c.root.trees[key] = tree(r, 100 + r.int(1400))
      else if (op === 2) delete c.root.trees[key]
      else {
        const t = c.root.trees[key]
        if (t) t.k0 = tree(r, 50 + r.int(300))
      }
    },
  },

  'list-ops': {
    mode: 'turn',
    noLeak: true,
    init(c, r) {
      c.root.l = Array.from({ length: 100 }, () => (r.bool() ? r.int(1000) : r.word(1 + r.int(8))))
    },
    step(c, r) {
      const l = c.root.l
      const op = r.int(10)
      const n = l.length
      switch (op) {
        case 0:
          l.sort()
          break
        case 1:
          l.sort((a, b) =>
            typeof a === typeof b ? (a < b ? -1 : a > b ? 1 : 0) : typeof a < typeof b ? -1 : 1,
          )
          break
        case 2:
          l.reverse()
          break
        case 3: {
          const add = Array.from({ length: r.int(6) }, () => r.int(1000))
          l.splice(r.int(n + 1), r.int(6), ...add)
          break
        }
        case 4:
          l.fill(r.word(3), r.int(n), r.int(n))
          break
        case 5:
          l.copyWithin(r.int(n), r.int(n), r.int(n))
          break
        case 6:
          if (n > 60) l.length = n - r.int(10)
          break
        case 7:
          l.unshift(r.int(1000), r.word(2))
          break
        case 8:
          l.push(...Array.from({ length: r.int(8) }, () => r.word(4)))
          break
        default:
          l.splice(r.int(n), 1)
      }
      if (l.length < 50) l.push(...Array.from({ length: 20 }, (_, i) => i))
      if (l.length > 300) l.length = 250
    },
  },

  'deep-copy': {
    mode: 'txn',
    noLeak: true,
    init(c, r) {
      c.root.src = tree(r, 400)
    },
    step(c, r) {
      const op = r.int(6)
      if (op <= 1) c.root[`c${r.int(3)}`] = c.copy(c.root.src)
      else if (op === 2) c.root.ref = c.root.src
      else if (op === 3) {
        const from = c.root[`c${r.int(3)}`]
        if (from) c.root[`c${r.int(3)}`] = c.copy(from)
      } else if (op === 4) c.root.src[`m${r.int(5)}`] = scalar(r)
      else {
        const o = walk(r, c.root.src, 4)
        if (Array.isArray(o)) o.push(scalar(r))
        else o[`x${r.int(4)}`] = scalar(r)
      }
    },
  },

  readers: {
    mode: 'turn',
    noLeak: true,
    readers: true,
    init(c) {
      c.root.n = 0
      c.root.m = 0
      c.root.l = []
    },
    step(c) {
      c.root.n += 1
      c.root.m += 2
      c.root.l.push(c.root.n)
      if (c.root.l.length > 30) c.root.l.shift()
    },
  },

  'types-mix': {
    mode: 'txn',
    noLeak: true,
    init(c) {
      c.root.v = {}
    },
    step(c, r) {
      const ops = 1 + r.int(10)
      for (let i = 0; i < ops; i++) {
        const key = `k${r.int(40)}`
        if (r.bool(0.2)) delete c.root.v[key]
        else c.root.v[key] = anyValue(r)
      }
    },
  },

  'move-pop': {
    mode: 'turn',
    noLeak: true,
    init(c, r) {
      c.root.a = Array.from({ length: 20 }, (_, i) => ({ id: i, tag: r.word(4), inner: { v: [i] } }))
      c.root.b = []
    },
    step(c, r) {
      const op = r.int(5)
      if (op <= 1) {
        if (c.root.a.length) c.root.b.push(c.root.a.pop())
        else c.root.a.push(c.root.b.shift())
      } else if (op === 2) {
        if (c.root.b.length) c.root.a.unshift(c.root.b.pop())
      } else if (op === 3) {
        const b = c.root.b
        if (b.length) c.root.shared = b[b.length - 1]
      } else {
        if (r.bool()) delete c.root.shared
        else if (c.root.a.length) c.root.a[0].inner.v.push(r.int(10))
      }
    },
  },
}

export const workloadNames = Object.keys(workloads)

/** The store files of a trial directory. */
export function storeFiles(dir, w) {
  const files = [`${dir}/a.persist`]
  if (w.stores === 2) files.push(`${dir}/b.persist`)
  return files
}

/** Plain-JS context for computing the model. */
export function modelContext(roots) {
  return {
    model: true,
    root: roots[0],
    root2: roots[1],
    tx: (fn) => fn(),
    nested: () => {},
    gc: () => {},
    copy: (v) => structuredClone(v),
  }
}

/**
 * Yields the model states [root, root2?] after steps 0, 1, 2, … of workload `name`
 * with `seed` (each yield is the same mutable objects: compare before advancing).
 */
export function* modelStates(name, seed, mix, rng) {
  const w = workloads[name]
  const roots = w.stores === 2 ? [{}, {}] : [{}]
  const c = modelContext(roots)
  w.init(c, rng(mix(seed, 0)))
  yield roots
  for (let k = 1; ; k++) {
    w.step(c, rng(mix(seed, k)), k)
    yield roots
  }
}
