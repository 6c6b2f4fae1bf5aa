import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
export const CLI = join(here, '..', 'dist', 'cli.js')
export const FIXTURES = join(here, 'fixtures')
export const REPO = join(here, '..', '..', '..')

export interface Result {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `persist ARGS` in a child process (the real executable) and waits for it. */
export function cli(
  args: string[],
  opts: { input?: string | Buffer; env?: Record<string, string> } = {},
): Result {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    env: { ...process.env, ...opts.env },
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Runs a fixture script; returns its last stdout line parsed as JSON. */
export function fixture(name: string, args: string[]): Record<string, number> {
  const r = spawnSync(process.execPath, [join(FIXTURES, name), ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  })
  if (r.status !== 0) throw new Error(`fixture ${name} ${args.join(' ')} failed (${r.status}): ${r.stderr}`)
  const lines = r.stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1])
}

export function tmpDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `persist-cli-${tag}-`))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Spawns `persist ARGS` without waiting; lines of stdout are collected as they come. */
export function cliSpawn(args: string[]): { child: ChildProcess; lines: string[]; stderr: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  })
  const lines: string[] = []
  let buf = ''
  let err = ''
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (d: string) => {
    buf += d
    let i = buf.indexOf('\n')
    while (i >= 0) {
      lines.push(buf.slice(0, i))
      buf = buf.slice(i + 1)
      i = buf.indexOf('\n')
    }
  })
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (d: string) => {
    err += d
  })
  return { child, lines, stderr: () => err }
}

export async function waitFor(cond: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
