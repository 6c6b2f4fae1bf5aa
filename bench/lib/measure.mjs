// Timing helpers. Every micro-benchmark goes through tinybench: one tinybench
// iteration runs a *batch* of `batch` operations and reports the mean per
// operation (overriddenDuration), so that sub-microsecond operations are not
// drowned by the ~50 ns timer call around each sample. Results are medians (p50)
// of the batch means, in microseconds per operation.
import { Bench } from 'tinybench'

const nowNs = () => process.hrtime.bigint()

/**
 * Measures `fn` (called with no argument, `batch` times per sample).
 * `fn` may be async (then every call is awaited: one JS turn per op at least).
 * Options: batch (ops per sample), time (ms budget), iterations (min samples),
 * warmup (ops run before measuring, default one batch).
 * Returns { us: p50 µs/op, mean, min, samples, ops }.
 */
export async function measure(name, fn, opts = {}) {
  const batch = opts.batch ?? 1000
  const isAsync = opts.async ?? fn.constructor.name === 'AsyncFunction'
  const bench = new Bench({
    name,
    time: opts.time ?? 500,
    iterations: opts.iterations ?? 5,
    warmup: opts.warmup ?? true,
    warmupIterations: opts.warmupIterations ?? 1,
    warmupTime: opts.warmupTime ?? 0,
    timestampProvider: 'hrtimeNow',
  })
  let ops = 0
  if (isAsync) {
    bench.add(
      name,
      async () => {
        const t0 = nowNs()
        for (let i = 0; i < batch; i++) await fn()
        const ms = Number(nowNs() - t0) / 1e6
        ops += batch
        return { overriddenDuration: ms / batch, overriddenIterationCost: ms }
      },
      { async: true },
    )
  } else {
    bench.add(
      name,
      () => {
        const t0 = nowNs()
        for (let i = 0; i < batch; i++) fn()
        const ms = Number(nowNs() - t0) / 1e6
        ops += batch
        return { overriddenDuration: ms / batch, overriddenIterationCost: ms }
      },
      { async: false },
    )
  }
  await bench.run()
  const task = bench.tasks[0]
  const r = task.result
  if (r.state === 'errored' || r.error) throw r.error ?? new Error(`${name}: benchmark errored`)
  return {
    us: r.latency.p50 * 1000,
    mean: r.latency.mean * 1000,
    min: r.latency.min * 1000,
    samples: r.latency.samplesCount,
    ops,
  }
}

/** Times one call of fn (sync or async) in microseconds, with hrtime. */
export async function timeOnce(fn) {
  const t0 = nowNs()
  const v = await fn()
  return { us: Number(nowNs() - t0) / 1e3, value: v }
}

/** Median of a list of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * measure() with the batch size chosen from a probe, so that one sample takes
 * about `sampleMs` (slow operations get small batches, fast ones large batches).
 */
export async function measureAuto(name, fn, opts = {}) {
  const sampleMs = opts.sampleMs ?? 20
  const isAsync = fn.constructor.name === 'AsyncFunction'
  const t0 = nowNs()
  let n = 0
  // Probe: at least 3 calls or 2 ms.
  while (n < 3 || Number(nowNs() - t0) < 2e6) {
    if (isAsync) await fn()
    else fn()
    n++
    if (n >= 100_000) break
  }
  const perOpMs = Number(nowNs() - t0) / 1e6 / n
  const batch = opts.batch ?? Math.max(1, Math.min(opts.maxBatch ?? 100_000, Math.round(sampleMs / perOpMs)))
  return { ...(await measure(name, fn, { ...opts, batch, async: isAsync })), batch }
}
