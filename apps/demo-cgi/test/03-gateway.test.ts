// 3. The built-in RFC 3875 gateway (used when lighttpd is absent) and the CGI programs run by hand.
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  APP_DIR,
  CGI_DIR,
  type Demo,
  demoEnv,
  failures,
  form,
  http,
  load,
  SERVE,
  startDemo,
  tempStore,
  visitorNumber,
} from './helpers.js'
import { checkPeopleFlow } from './people-flow.js'

/** Runs a CGI program directly with the given meta-variables and stdin; returns its raw stdout. */
function runCgi(
  script: string,
  storePath: string,
  vars: Record<string, string>,
  stdin?: { data: string; end: boolean },
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(join(CGI_DIR, script), [], { env: { ...demoEnv(storePath), ...vars } })
    let out = ''
    child.stdout.on('data', (c) => (out += c))
    child.on('close', (code) => resolve({ code, out }))
    if (stdin) {
      child.stdin.write(stdin.data)
      // Not ending stdin models a server that keeps the pipe open after the body (§4.2).
      if (stdin.end) child.stdin.end()
      else child.stdout.once('end', () => child.stdin.destroy())
    } else child.stdin.end()
  })
}

describe('3. CGI programs and the built-in gateway', () => {
  const store = tempStore()
  let demo: Demo

  beforeAll(async () => {
    demo = await startDemo('gateway', store.path)
  })
  afterAll(async () => {
    await demo?.stop()
    store.cleanup()
  })

  it('3.1 counter.js run directly (executable, shebang): CGI headers then HTML; the count persists', async () => {
    const own = tempStore()
    try {
      const a = await runCgi('counter.js', own.path, { REQUEST_METHOD: 'GET', GATEWAY_INTERFACE: 'CGI/1.1' })
      expect(a.code).toBe(0)
      expect(a.out).toMatch(/^Status: 200 OK\r\nContent-Type: text\/html; charset=utf-8\r\n/)
      expect(a.out).toContain('\r\n\r\n<!doctype html>')
      expect(visitorNumber(a.out)).toBe(1)
      const b = await runCgi('counter.js', own.path, { REQUEST_METHOD: 'GET' })
      expect(visitorNumber(b.out)).toBe(2)
    } finally {
      own.cleanup()
    }
  })

  it('3.2 people.js reads exactly CONTENT_LENGTH bytes even when stdin stays open', async () => {
    const own = tempStore()
    try {
      const body = form({ action: 'add', name: 'Ada', age: '36' })
      const r = await runCgi(
        'people.js',
        own.path,
        {
          REQUEST_METHOD: 'POST',
          CONTENT_TYPE: 'application/x-www-form-urlencoded',
          CONTENT_LENGTH: String(body.length),
        },
        { data: `${body}&ignored=trailing-bytes-beyond-content-length`, end: false },
      )
      expect(r.code).toBe(0)
      expect(r.out).toMatch(/^Status: 303 See Other\r\nLocation: \/people\r\n/)
      const list = await runCgi('people.js', own.path, { REQUEST_METHOD: 'GET' })
      expect(list.out).toContain('<td class="name">Ada</td><td class="num age">36</td>')
    } finally {
      own.cleanup()
    }
  })

  it('3.3 gateway: 50 counter requests at concurrency 8 are counted exactly', async () => {
    const start = visitorNumber((await http(`${demo.url}/counter`)).body)
    const replies = await load(`${demo.url}/counter`, 50, 8)
    expect(failures(replies), demo.output()).toEqual([])
    expect(new Set(replies.map((r) => visitorNumber(r.body))).size).toBe(50)
    expect(visitorNumber((await http(`${demo.url}/counter`)).body)).toBe(start + 51)
  }, 180_000)

  it('3.4 gateway: the people flow (request bodies, Status → HTTP status, Location)', async () => {
    await checkPeopleFlow(demo)
  }, 180_000)

  it('3.5 gateway: 404 for unknown paths, 405 with Allow, 413 for huge bodies', async () => {
    const nf = await http(`${demo.url}/nope`)
    expect(nf.status).toBe(404)
    expect(nf.body).toContain('/counter')
    const m = await http(`${demo.url}/counter`, { method: 'DELETE' })
    expect(m.status).toBe(405)
    expect(m.headers.allow).toBe('GET, HEAD')
    const big = await http(`${demo.url}/people`, { method: 'POST', body: 'x'.repeat(70_000) })
    expect(big.status).toBe(413)
  })

  it('3.6 serve.js refuses bad options (exit 2, usage) and a port in use (exit 1, says so), in every mode', async () => {
    const bad = spawnSync(process.execPath, [SERVE, '--mode', 'fast'], {
      env: demoEnv(store.path),
      encoding: 'utf8',
    })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain('--mode must be one of cgi, lighttpd, gateway, cluster, got "fast"')
    expect(bad.stderr).toContain('usage:')
    const busy = createServer()
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r))
    const port = String((busy.address() as AddressInfo).port)
    try {
      for (const mode of ['gateway', 'cluster', 'lighttpd']) {
        const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
          const child = spawn(process.execPath, [SERVE, '--port', port, '--mode', mode], {
            env: demoEnv(store.path),
          })
          let err = ''
          child.stderr.on('data', (c) => (err += c))
          child.on('close', (code) => resolve({ code, err }))
        })
        expect(r.code, mode).toBe(1)
        expect(r.err, mode).toContain(`port ${port} on 127.0.0.1 is already in use`)
      }
    } finally {
      busy.close()
    }
  })

  it('3.7 a file that is not a store: serve.js refuses to start, a CGI program answers 500 naming the error code', async () => {
    const own = tempStore()
    try {
      writeFileSync(own.path, 'just some text, not a persist store\n'.repeat(200))
      const r = spawnSync(process.execPath, [SERVE, '--port', '0', '--mode', 'gateway'], {
        env: demoEnv(own.path),
        encoding: 'utf8',
      })
      expect(r.status).toBe(1)
      expect(r.stderr).toMatch(/demo: cannot use the store .*demo\.persist \(PERSIST_[A-Z_]+\): /)
      const page = await runCgi('counter.js', own.path, { REQUEST_METHOD: 'GET' })
      expect(page.code).toBe(0)
      expect(page.out).toMatch(/^Status: 500 Internal Server Error\r\n/)
      expect(page.out).toMatch(/The store reported PERSIST_[A-Z_]+: /)
    } finally {
      own.cleanup()
    }
  })

  it('3.8 when the persist packages cannot be loaded, a CGI program still answers a 500 that says so', () => {
    const own = tempStore()
    try {
      // The built app copied where @persist/persist cannot be resolved.
      cpSync(join(APP_DIR, 'dist'), join(own.dir, 'dist'), { recursive: true })
      writeFileSync(join(own.dir, 'package.json'), '{"type":"module"}')
      const r = spawnSync(join(own.dir, 'dist', 'cgi', 'counter.js'), [], {
        env: { ...demoEnv(own.path), REQUEST_METHOD: 'GET' },
        encoding: 'utf8',
      })
      expect(r.status).toBe(0)
      expect(r.stdout).toMatch(
        /^Status: 500 Internal Server Error\r\nContent-Type: text\/plain; charset=utf-8\r\n\r\n/,
      )
      expect(r.stdout).toMatch(
        /The demo could not load the persist packages: Cannot find package '@persist\/(persist|pbase)'/,
      )
      expect(r.stderr).toContain('demo-cgi: cannot load the demo')
    } finally {
      own.cleanup()
    }
  })
})
