// 4. Cluster mode: node:cluster workers serving the pages in-process from one shared store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Demo, failures, http, load, startDemo, tempStore, visitorNumber } from './helpers.js'
import { checkPeopleFlow } from './people-flow.js'

describe('4. cluster mode, 2 workers', () => {
  const store = tempStore()
  let demo: Demo

  beforeAll(async () => {
    demo = await startDemo('cluster', store.path, ['--workers', '2'])
  })
  afterAll(async () => {
    await demo?.stop()
    store.cleanup()
  })

  it('4.1 1,000 requests at concurrency 32: exact count, every number once', async () => {
    expect(demo.output()).toContain('node:cluster, 2 workers')
    const start = visitorNumber((await http(`${demo.url}/counter`)).body)
    const replies = await load(`${demo.url}/counter`, 1000, 32)
    expect(failures(replies), demo.output()).toEqual([])
    const seen = replies.map((r) => visitorNumber(r.body)).sort((a, b) => a - b)
    expect(seen).toEqual(Array.from({ length: 1000 }, (_, i) => start + 1 + i))
    expect(visitorNumber((await http(`${demo.url}/counter`)).body)).toBe(start + 1001)
  }, 180_000)

  it('4.2 the people flow', async () => {
    await checkPeopleFlow(demo)
  })

  it('4.3 stops on SIGINT (Ctrl-C) with exit code 0, workers included', async () => {
    const pids = /workers: (\d+) (\d+)/.exec(demo.output())!.slice(1).map(Number)
    expect(await demo.stop('SIGINT')).toBe(0)
    await new Promise((r) => setTimeout(r, 200))
    for (const pid of pids) expect(() => process.kill(pid, 0), `worker ${pid}`).toThrow()
  })
})

describe('4b. cluster mode and CGI share one store file', () => {
  it('4b.1 visits counted by the cluster and by CGI processes add up', async () => {
    const store = tempStore()
    const a = await startDemo('cluster', store.path, ['--workers', '2'])
    const b = await startDemo('gateway', store.path)
    try {
      await load(`${a.url}/counter`, 50, 8)
      await load(`${b.url}/counter`, 20, 4)
      expect(visitorNumber((await http(`${a.url}/counter`)).body)).toBe(71)
      expect(visitorNumber((await http(`${b.url}/counter`)).body)).toBe(72)
    } finally {
      await a.stop()
      await b.stop()
      store.cleanup()
    }
  }, 180_000)
})

describe('4c. cluster mode survives kill -9 of a worker', () => {
  it('4c.1 a worker killed during load is replaced; nothing is lost or half-done; counting stays exact after', async () => {
    const store = tempStore()
    const demo = await startDemo('cluster', store.path, ['--workers', '2'])
    try {
      const pids = /workers: (\d+) (\d+)/.exec(demo.output())!.slice(1).map(Number)
      const start = visitorNumber((await http(`${demo.url}/counter`)).body)
      const running = load(`${demo.url}/counter`, 400, 16, { tolerateErrors: true })
      await new Promise((r) => setTimeout(r, 300))
      process.kill(pids[0], 'SIGKILL')
      const replies = await running
      const ok = replies.filter((r) => r.status === 200)
      expect(failures(replies).filter((f) => f.status !== 0)).toEqual([]) // only lost connections
      // A request whose worker died after its commit is counted without a reply: at most one per connection.
      // Right after the kill a new connection is answered at once (cluster.SCHED_NONE:
      // no connection is handed to the dying worker).
      const after = visitorNumber((await http(`${demo.url}/counter`, { timeoutMs: 10_000 })).body)
      expect(after - 1 - start).toBeGreaterThanOrEqual(ok.length)
      expect(after - 1 - start).toBeLessThanOrEqual(ok.length + 16)
      expect(new Set(ok.map((r) => visitorNumber(r.body))).size).toBe(ok.length)
      // The primary replaced the worker; both serve and count exactly.
      await waitFor(() => /demo: worker \d+ started/.test(demo.output()), 20_000)
      expect(demo.output()).toContain(`demo: worker ${pids[0]} exited (SIGKILL); starting another`)
      const more = await load(`${demo.url}/counter`, 200, 16)
      expect(failures(more), demo.output()).toEqual([])
      expect(visitorNumber((await http(`${demo.url}/counter`)).body)).toBe(after + 201)
    } finally {
      await demo.stop()
      store.cleanup()
    }
  }, 180_000)
})

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 50))
  }
}
