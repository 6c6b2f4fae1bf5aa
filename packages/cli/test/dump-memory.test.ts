// 2.x: dump of 10^6 entries streams in bounded memory.
//
// The store holds root.items = a dict of 10^6 entries (key 8 chars → string of 90
// chars); its JSON is ≈ 103 MB. The child runs with the V8 heap capped at 16 MiB old
// space + 2 MiB semi-spaces (a dump that built the JSON string, or even an array of all
// keys, would die with "heap out of memory"), and the parent samples the child's anonymous
// resident memory (RssAnon in /proc/PID/status: the JS heap, malloc, buffers — not
// the pages of the mapped store file, which the kernel may drop at any time) every
// 5 ms and asserts its peak is below a third of the size of the output.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { CLI, fixture, tmpDir } from './helpers.js'

const N = 1_000_000
const { dir, cleanup } = tmpDir('mem')
const store = join(dir, 'big.persist')

beforeAll(() => {
  fixture('make-store.mjs', [store, 'big', String(N), '80'])
}, 120_000)
afterAll(cleanup)

function anonKb(pid: number): number {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

async function dumpMeasured(args: string[]) {
  const child = spawn(
    process.execPath,
    ['--max-old-space-size=16', '--max-semi-space-size=2', CLI, 'dump', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env,
    },
  )
  let bytes = 0
  let newlines = 0
  let head = ''
  let tail = ''
  child.stdout.on('data', (d: Buffer) => {
    bytes += d.length
    for (let i = 0; i < d.length; i++) if (d[i] === 10) newlines++
    if (head.length < 200) head += d.toString('latin1', 0, 200)
    tail = (tail + d.toString('latin1')).slice(-200)
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    stderr += d
  })
  let peak = 0
  const timer = setInterval(() => {
    peak = Math.max(peak, anonKb(child.pid!))
  }, 5)
  const code = await new Promise<number | null>((r) => child.on('close', r))
  clearInterval(timer)
  return { code, bytes, newlines, head, tail, peakAnonBytes: peak * 1024, stderr }
}

it('2.1 dump of a 10^6-entry dict streams: peak anonymous RSS far below the JSON size', async () => {
  const r = await dumpMeasured([store])
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  expect(r.head.startsWith('{"items":{"k0000000":"k0000000:vvvv')).toBe(true)
  expect(r.tail.endsWith(`"k0999999:${'v'.repeat(80)}"}}\n`)).toBe(true)
  expect(r.bytes).toBeGreaterThan(100_000_000)
  console.log(
    `dump: ${(r.bytes / 1e6).toFixed(1)} MB of JSON; child peak RssAnon ${(r.peakAnonBytes / 1e6).toFixed(1)} MB`,
  )
  expect(r.peakAnonBytes).toBeGreaterThan(0)
  expect(r.peakAnonBytes).toBeLessThan(r.bytes / 3)
}, 120_000)

it('2.2 dump --ndjson of the 10^6 entries: one line each, same bound', async () => {
  const r = await dumpMeasured(['--ndjson', store, 'items'])
  expect(r.code).toBe(0)
  expect(r.newlines).toBe(N)
  expect(r.head.startsWith('{"key":"k0000000","value":"k0000000:')).toBe(true)
  console.log(
    `ndjson: ${(r.bytes / 1e6).toFixed(1)} MB; child peak RssAnon ${(r.peakAnonBytes / 1e6).toFixed(1)} MB`,
  )
  expect(r.peakAnonBytes).toBeLessThan(r.bytes / 3)
}, 120_000)

it('2.3 on a terminal, a dump that runs over a second shows a progress bar on stderr', () => {
  // `script` runs the command under a pseudo-terminal and records what it printed.
  const out = join(dir, 'out.ndjson')
  const log = join(dir, 'tty.log')
  const r = spawnSync(
    'script',
    ['-qfec', `${process.execPath} ${CLI} dump --ndjson -o ${out} ${store} items`, log],
    {
      encoding: 'utf8',
    },
  )
  expect(r.status).toBe(0)
  const tty = readFileSync(log, 'utf8')
  expect(tty).toMatch(/dump \[[^\]]*\] \d+% \| \d+\/1000000 entries/)
  expect(tty).toMatch(/100% \| 1000000\/1000000 entries/)
  expect(statSync(out).size).toBeGreaterThan(100_000_000) // the output itself went to the file
}, 120_000)
