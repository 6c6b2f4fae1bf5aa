/** Test helpers: start `dist/serve.js` as a real process, drive it with real HTTP. */
import { type ChildProcess, spawn } from 'node:child_process'
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const APP_DIR = fileURLToPath(new URL('..', import.meta.url))
export const SERVE = join(APP_DIR, 'dist', 'serve.js')
export const CGI_DIR = join(APP_DIR, 'dist', 'cgi')
export const ARTIFACTS = join(APP_DIR, 'test-artifacts')

/** Environment for every demo process the tests start: the given store, no inherited PORT. */
export function demoEnv(storePath: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PERSIST_PATH: storePath }
  delete env.PORT
  return env
}

/** A fresh temp dir with a store path in it; `cleanup` removes it. */
export function tempStore(): { dir: string; path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'persist-demo-test-'))
  return {
    dir,
    path: join(dir, 'demo.persist'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** Fails (never skips) when a tool the e2e tests need is missing. */
export function requireExecutable(path: string, install: string): void {
  try {
    accessSync(path, constants.X_OK)
  } catch {
    throw new Error(
      `${path} is missing: install it (${install}); .ci/run installs it in CI. This test does not skip.`,
    )
  }
}

/** lighttpd as `--mode lighttpd` finds it (PATH, then the sbin dirs); fails when absent. */
export async function requireLighttpd(): Promise<void> {
  const { findLighttpd } = await import('../dist/lighttpd.js')
  if (!findLighttpd()) {
    throw new Error(
      'lighttpd is not installed: apt-get install -y lighttpd (.ci/run installs it in CI). This test does not skip.',
    )
  }
}

export interface Demo {
  url: string
  child: ChildProcess
  output: () => string
  /** Sends `signal` (default SIGTERM) unless it already exited; resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Starts `node dist/serve.js --port 0 --mode <mode> ...` and resolves with its printed URL. */
export function startDemo(mode: string, storePath: string, extraArgs: string[] = []): Promise<Demo> {
  const child = spawn(process.execPath, [SERVE, '--port', '0', '--mode', mode, ...extraArgs], {
    env: demoEnv(storePath),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (c) => (out += c))
  child.stderr!.on('data', (c) => (out += c))
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)))
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    return exited
  }
  return new Promise((resolve, reject) => {
    let started = false
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`demo (${mode}) printed no URL within 20 s:\n${out}`))
    }, 20_000)
    exited.then((code) => {
      clearTimeout(timer)
      if (!started) reject(new Error(`demo (${mode}) exited with ${code} before serving:\n${out}`))
    })
    const onData = () => {
      const m = /on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)
      if (!m || started) return
      started = true
      clearTimeout(timer)
      child.stdout!.off('data', onData)
      resolve({ url: m[1], child, output: () => out, stop })
    }
    child.stdout!.on('data', onData)
  })
}

export interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One HTTP request (no redirect following). */
export function http(
  url: string,
  opts: { method?: string; body?: string; contentType?: string; agent?: Agent; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {}
    if (opts.body !== undefined) {
      headers['Content-Type'] = opts.contentType ?? 'application/x-www-form-urlencoded'
      headers['Content-Length'] = String(Buffer.byteLength(opts.body))
    }
    const req = request(url, { method: opts.method ?? 'GET', headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    // A connection whose cluster worker was killed may never be answered or closed:
    // give up after a while so it counts as a lost connection instead of hanging.
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error('request timed out')))
    req.end(opts.body)
  })
}

/** `total` requests made by `concurrency` parallel clients (keep-alive); replies in completion order. */
export async function load(
  url: string,
  total: number,
  concurrency: number,
  opts: { method?: string; body?: string; tolerateErrors?: boolean } = {},
): Promise<Reply[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const replies: Reply[] = []
  let next = 0
  const client = async () => {
    while (next < total) {
      next++
      try {
        replies.push(await http(url, { ...opts, agent }))
      } catch (e) {
        if (!opts.tolerateErrors) throw e
        replies.push({ status: 0, headers: {}, body: String(e) }) // connection lost (e.g. its worker was killed)
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, client))
  } finally {
    agent.destroy()
  }
  return replies
}

/** The N of "You are visitor N" in a counter page. */
export function visitorNumber(body: string): number {
  const m = /You are visitor <span class="big" id="visits">(\d+)<\/span>/.exec(body)
  if (!m) throw new Error(`not a counter page:\n${body.slice(0, 500)}`)
  return Number(m[1])
}

export interface Row {
  id: string
  name: string
  age: number
}

/** The people table of a /people page, names un-escaped as a browser would show them. */
export function peopleRows(body: string): Row[] {
  const rows: Row[] = []
  const re = /<tr data-id="([^"]*)"><td class="name">([^<]*)<\/td><td class="num age">(\d+)<\/td>/g
  for (let m = re.exec(body); m; m = re.exec(body)) {
    const name = m[2]
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, '&')
    rows.push({ id: m[1], name, age: Number(m[3]) })
  }
  return rows
}

export function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString()
}

/** Replies whose status is not `expected`, with the reasons their error page gives (for assertion messages). */
export function failures(replies: Reply[], expected = 200): { status: number; reasons: string[] }[] {
  return replies
    .filter((r) => r.status !== expected)
    .map((r) => ({ status: r.status, reasons: [...r.body.matchAll(/<li>([^<]*)<\/li>/g)].map((m) => m[1]) }))
}
