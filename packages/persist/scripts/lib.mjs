// Shared helpers of the reliability harnesses (crash-matrix, lock-death, bad-files,
// full-disk, soak, model): argument parsing, a deterministic PRNG, a structural
// deep-equal that also checks sharing, child processes with line output, a worker pool.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Parses `--name value` and `--flag` arguments. `spec` maps names to defaults; the
 * type of the default (number, string, boolean) decides how a value is read.
 * Unknown flags throw with the list of known ones.
 */
export function parseArgs(argv, spec) {
  const out = { ...spec, _: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) {
      out._.push(a)
      continue
    }
    const name = a.slice(2)
    if (!(name in spec))
      throw new Error(
        `unknown option ${a}; known: ${Object.keys(spec)
          .map((k) => `--${k}`)
          .join(' ')}`,
      )
    if (typeof spec[name] === 'boolean') {
      out[name] = true
      continue
    }
    const v = argv[++i]
    if (v === undefined) throw new Error(`${a} needs a value`)
    out[name] = typeof spec[name] === 'number' ? Number(v) : v
    if (typeof spec[name] === 'number' && !Number.isFinite(out[name]))
      throw new Error(`${a}: not a number: ${v}`)
  }
  return out
}

/** 32-bit mix of two integers (splitmix-like), for per-step seeds. */
export function mix(a, b) {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35)) >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x7feb352d) >>> 0
  h ^= h >>> 15
  h = Math.imul(h, 0x846ca68b) >>> 0
  h ^= h >>> 16
  return h >>> 0 || 1
}

/** Deterministic PRNG (xorshift32) with small conveniences. */
export function rng(seed) {
  let x = seed >>> 0 || 0x1234567
  const next = () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
  const r = {
    next,
    /** integer in [0, n) */
    int: (n) => next() % n,
    /** float in [0, 1) */
    float: () => next() / 4294967296,
    bool: (p = 0.5) => next() / 4294967296 < p,
    pick: (arr) => arr[next() % arr.length],
    /** a printable ASCII string of length n */
    word: (n) => {
      let s = ''
      for (let i = 0; i < n; i++) s += String.fromCharCode(97 + (next() % 26))
      return s
    },
  }
  return r
}

/**
 * Structural equality of two JS values that also checks the sharing graph: an object
 * seen twice on one side must correspond to the same object on the other (so cycles
 * and shared references must match). Prototypes are ignored (a class instance equals
 * a plain object with the same fields). Returns undefined when equal, else a path and
 * a description of the first difference.
 */
export function diff(a, b, path = '$', seen = { ab: new Map(), ba: new Map() }) {
  if (Object.is(a, b)) return undefined
  const ta = typeOf(a)
  const tb = typeOf(b)
  if (ta !== tb) return `${path}: ${ta} ${short(a)} vs ${tb} ${short(b)}`
  switch (ta) {
    case 'number':
    case 'string':
    case 'boolean':
    case 'bigint':
    case 'undefined':
    case 'null':
      return `${path}: ${short(a)} vs ${short(b)}`
    case 'date':
      return Object.is(a.getTime(), b.getTime())
        ? undefined
        : `${path}: date ${a.getTime()} vs ${b.getTime()}`
    case 'bytes': {
      if (a.constructor.name !== b.constructor.name)
        return `${path}: ${a.constructor.name} vs ${b.constructor.name}`
      const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
      const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
      if (x.length !== y.length) return `${path}: ${x.length} bytes vs ${y.length} bytes`
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return `${path}: byte ${i}: ${x[i]} vs ${y[i]}`
      return undefined
    }
  }
  // arrays and objects: the sharing bijection
  const ma = seen.ab.get(a)
  const mb = seen.ba.get(b)
  if (ma !== undefined || mb !== undefined)
    return ma === b && mb === a ? undefined : `${path}: sharing differs`
  seen.ab.set(a, b)
  seen.ba.set(b, a)
  if (ta === 'array') {
    if (a.length !== b.length) return `${path}: length ${a.length} vs ${b.length}`
    for (let i = 0; i < a.length; i++) {
      const d = diff(a[i], b[i], `${path}[${i}]`, seen)
      if (d) return d
    }
    return undefined
  }
  const ka = Object.keys(a).sort()
  const kb = Object.keys(b).sort()
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i]))
    return `${path}: keys [${ka.slice(0, 12).join(',')}${ka.length > 12 ? ',…' : ''}] vs [${kb.slice(0, 12).join(',')}${kb.length > 12 ? ',…' : ''}]`
  for (const k of ka) {
    const d = diff(a[k], b[k], `${path}.${k}`, seen)
    if (d) return d
  }
  return undefined
}

function typeOf(v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (v instanceof Date) return 'date'
  if (ArrayBuffer.isView(v)) return 'bytes'
  return typeof v
}

function short(v) {
  if (typeof v === 'string')
    return v.length > 40 ? `string(${v.length}) ${JSON.stringify(v.slice(0, 20))}…` : JSON.stringify(v)
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? `array(${v.length})` : 'object'
  return String(v)
}

/** A fresh directory under os.tmpdir(). */
export function tempDir(prefix = 'persist-rel-') {
  return mkdtempSync(join(tmpdir(), prefix))
}

export function rmDir(dir) {
  rmSync(dir, { recursive: true, force: true })
}

/**
 * The environment for a harness child: ours plus `extra`, without NODE_EXTRA_CA_CERTS.
 * With that variable set, every Node process parses the certificate bundle at start-up
 * (measured here: `node -e 0` 143 ms instead of 47 ms of CPU); the children never open
 * a TLS connection, and the crash harnesses spawn one per trial.
 */
export function childEnv(extra) {
  const env = { ...process.env, ...extra }
  delete env.NODE_EXTRA_CA_CERTS
  return env
}

/**
 * Spawns `node script ...args` with piped stdio. Calls onLine(line) for each complete
 * stdout line as it arrives. Resolves (never rejects) at close with
 * { code, signal, lines, stderr, ms }.
 */
export function runChild(script, args, { onLine, env, stdin = 'ignore', timeoutMs = 0 } = {}) {
  const t0 = performance.now()
  const p = spawn(process.execPath, [script, ...args], {
    stdio: [stdin, 'pipe', 'pipe'],
    env: childEnv(env),
  })
  const lines = []
  let buf = ''
  let stderr = ''
  let timedOut = false
  let timer
  if (timeoutMs > 0)
    timer = setTimeout(() => {
      timedOut = true
      p.kill('SIGKILL')
    }, timeoutMs)
  p.stdout.setEncoding('utf8')
  p.stdout.on('data', (d) => {
    buf += d
    let i = buf.indexOf('\n')
    while (i >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      lines.push(line)
      if (onLine) onLine(line, p)
      i = buf.indexOf('\n')
    }
  })
  p.stderr.setEncoding('utf8')
  p.stderr.on('data', (d) => {
    if (stderr.length < 20000) stderr += d
  })
  const done = new Promise((resolve) => {
    p.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      resolve({ code, signal, lines, stderr, ms: performance.now() - t0, timedOut })
    })
  })
  return { proc: p, done }
}

/** Runs `worker(i)` for i = 0.. while `more(i)` is true, at most `n` at a time. */
export async function pool(n, more, worker) {
  let i = 0
  const runners = []
  for (let w = 0; w < n; w++)
    runners.push(
      (async () => {
        while (more(i)) {
          const mine = i++
          await worker(mine, w)
        }
      })(),
    )
  await Promise.all(runners)
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
/** A timer that does not keep the process alive (for timeouts raced against work). */
export const deadlineAfter = (ms, value) => new Promise((r) => setTimeout(() => r(value), ms).unref())

/** A one-line request/response client over a long-lived child's stdin/stdout (JSON lines). */
export class JsonChild {
  constructor(script, args, env) {
    this.script = script
    this.args = args
    this.env = env
    this.start()
  }
  start() {
    this.waiters = []
    this.stderr = ''
    const p = spawn(process.execPath, [this.script, ...this.args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: childEnv(this.env),
    })
    this.proc = p
    let buf = ''
    p.stdout.setEncoding('utf8')
    p.stdout.on('data', (d) => {
      buf += d
      let i = buf.indexOf('\n')
      while (i >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        const w = this.waiters.shift()
        if (w) w.resolve(JSON.parse(line))
        i = buf.indexOf('\n')
      }
    })
    p.stderr.setEncoding('utf8')
    p.stderr.on('data', (d) => {
      if (this.stderr.length < 20000) this.stderr += d
    })
    p.on('close', (code, signal) => {
      this.dead = { code, signal }
      for (const w of this.waiters.splice(0)) w.resolve({ died: true, code, signal, stderr: this.stderr })
    })
    p.stdin.on('error', () => {})
    this.dead = undefined
  }
  /** Sends one request; resolves with the reply, or { died, signal, stderr } if the child died. */
  request(obj, timeoutMs = 120_000) {
    if (this.dead) this.start()
    return new Promise((resolve) => {
      let timer
      const w = {
        resolve: (v) => {
          clearTimeout(timer)
          resolve(v)
        },
      }
      timer = setTimeout(() => {
        this.proc.kill('SIGKILL')
        resolve({ died: true, hang: true, stderr: this.stderr })
      }, timeoutMs)
      this.waiters.push(w)
      this.proc.stdin.write(`${JSON.stringify(obj)}\n`)
    })
  }
  close() {
    if (!this.dead) this.proc.stdin.end()
  }
}

/** Reads JSON-line requests on stdin and answers each with handler(req) (may be async). */
export async function serveJsonLines(handler) {
  process.stdin.setEncoding('utf8')
  let buf = ''
  for await (const d of process.stdin) {
    buf += d
    let i = buf.indexOf('\n')
    while (i >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      let out
      try {
        out = await handler(JSON.parse(line))
      } catch (e) {
        out = { ok: false, kind: 'harness-error', detail: String(e?.stack ?? e) }
      }
      process.stdout.write(`${JSON.stringify(out)}\n`)
      i = buf.indexOf('\n')
    }
  }
}

/** Formats rows (arrays) as an aligned text table; the first row is the header. */
export function table(rows) {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)))
  return rows
    .map((r) => r.map((v, c) => (c === 0 ? String(v).padEnd(w[c]) : String(v).padStart(w[c]))).join('  '))
    .join('\n')
}
