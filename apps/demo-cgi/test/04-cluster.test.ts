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

  it('4.3 stops on SIGTERM with exit code 0', async () => {
    expect(await demo.stop()).toBe(0)
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
