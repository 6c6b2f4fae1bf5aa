// 2. CGI under a real lighttpd + mod_cgi: one node process per request.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Demo,
  failures,
  http,
  load,
  requireLighttpd,
  startDemo,
  tempStore,
  visitorNumber,
} from './helpers.js'
import { checkPeopleFlow } from './people-flow.js'

describe('2. CGI under lighttpd', () => {
  const store = tempStore()
  let demo: Demo

  beforeAll(async () => {
    await requireLighttpd()
    demo = await startDemo('lighttpd', store.path)
  })
  afterAll(async () => {
    await demo?.stop()
    store.cleanup()
  })

  it('2.1 serves the index page and prints how it runs', async () => {
    expect(demo.output()).toMatch(/CGI under lighttpd [\d.]+ \+ mod_cgi/)
    const r = await http(`${demo.url}/`)
    expect(r.status).toBe(200)
    expect(r.body).toContain('href="/counter"')
  })

  it('2.2 200 requests at concurrency 16: the counter ends at exactly start + 200, every number once', async () => {
    const start = visitorNumber((await http(`${demo.url}/counter`)).body)
    const replies = await load(`${demo.url}/counter`, 200, 16)
    expect(failures(replies), demo.output()).toEqual([])
    const seen = replies.map((r) => visitorNumber(r.body)).sort((a, b) => a - b)
    expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => start + 1 + i))
    expect(visitorNumber((await http(`${demo.url}/counter`)).body)).toBe(start + 201)
    expect(existsSync(store.path)).toBe(true)
  }, 180_000) // generous: one node process per request on a busy 2-core machine

  it('2.3 people flow: add, list, birthday, bad input → 400 with reason, escaping', async () => {
    await checkPeopleFlow(demo)
  }, 180_000)

  it('2.4 stops cleanly on SIGTERM: lighttpd exits and its generated config dir is removed', async () => {
    const conf = /lighttpd config: (\S+)/.exec(demo.output())?.[1]
    expect(conf).toBeDefined()
    expect(existsSync(conf!)).toBe(true)
    expect(processesWith(conf!)).toHaveLength(1)
    const code = await demo.stop()
    expect(code).toBe(0)
    expect(existsSync(conf!)).toBe(false)
    expect(processesWith(conf!)).toHaveLength(0)
  })
})

/** Pids whose command line mentions `text` (the lighttpd started with that config). */
function processesWith(text: string): string[] {
  return readdirSync('/proc').filter((pid) => {
    if (!/^\d+$/.test(pid)) return false
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)
    } catch {
      return false
    }
  })
}
