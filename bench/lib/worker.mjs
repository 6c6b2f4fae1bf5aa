// Runs one workload in its own process (fresh heap, and a crash of a layer under
// test cannot take the whole run down). Usage (from run.mjs):
//   node lib/worker.mjs <workload-id> '<json options>'
// Writes the workload's Result as JSON to options.resultPath.
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { measure, median, timeOnce } from './measure.mjs'

const [id, json] = process.argv.slice(2)
const opts = JSON.parse(json ?? '{}')
const workload = (await import(`../workloads/${id}.mjs`)).default
const tmp = mkdtempSync(join(opts.tmpBase ?? tmpdir(), `persist-bench-${id}-`))
const extraDirs = []
const ctx = {
  quick: Boolean(opts.quick),
  tmp,
  /**
   * A scratch directory on tmpfs (/dev/shm) when it has room for `bytes` twice over,
   * else under tmp. For workloads whose result does not depend on the disk (open
   * time with a warm cache, file sizes) but whose setup would write gigabytes.
   * Returns { dir, fs: 'tmpfs' | 'disk' }.
   */
  memTmp(bytes) {
    try {
      const st = statfsSync('/dev/shm')
      if (st.bavail * st.bsize > 2 * bytes) {
        const dir = mkdtempSync(`/dev/shm/persist-bench-${id}-`)
        extraDirs.push(dir)
        return { dir, fs: 'tmpfs' }
      }
    } catch {}
    return { dir: tmp, fs: 'disk' }
  },
  log: (...a) => console.log(`  [${id}]`, ...a),
  measure,
  median,
  timeOnce,
}
let code = 0
try {
  const res = await workload.run(ctx)
  writeFileSync(opts.resultPath, JSON.stringify(res))
} catch (e) {
  console.error(`  [${id}] failed:`, e?.stack ?? e)
  code = 1
} finally {
  rmSync(tmp, { recursive: true, force: true })
  for (const d of extraDirs) rmSync(d, { recursive: true, force: true })
}
process.exit(code)
