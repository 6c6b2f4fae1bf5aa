/** The people flow over real HTTP, shared by the lighttpd, gateway and cluster tests. */
import { expect } from 'vitest'
import { type Demo, failures, form, http, load, peopleRows } from './helpers.js'

/** Runs the flow; on failure the server's output (CGI stderr included) is added to the error. */
export async function checkPeopleFlow(demo: Demo): Promise<void> {
  try {
    await flow(demo.url)
  } catch (e) {
    if (e instanceof Error) e.message += `\n--- server output ---\n${demo.output()}`
    throw e
  }
}

async function flow(base: string): Promise<void> {
  const people = `${base}/people`
  // 1. First visit seeds the seed's two people.
  let page = await http(people)
  expect(page.status).toBe(200)
  expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
  expect(peopleRows(page.body)).toEqual([
    { id: '1', name: 'Joe', age: 27 },
    { id: '2', name: 'John', age: 29 },
  ])

  // 2. Add: POST → 303 to the list; the name is stored verbatim and shown escaped.
  const evil = `<script>alert("x")</script> & 'Bob'`
  const added = await http(people, { method: 'POST', body: form({ action: 'add', name: evil, age: '41' }) })
  expect(added.status).toBe(303)
  expect(added.headers.location).toBe('/people')
  page = await http(people)
  expect(page.body).not.toContain('<script>alert')
  expect(page.body).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Bob&#39;')
  const rows = peopleRows(page.body)
  expect(rows).toHaveLength(3)
  const bob = rows[2]
  expect(bob).toMatchObject({ name: evil, age: 41 })

  // 3. Birthday: age += 1 in place.
  const bday = await http(people, { method: 'POST', body: form({ action: 'birthday', id: bob.id }) })
  expect(bday.status).toBe(303)
  expect(bday.headers.location).toBe('/people')
  page = await http(people)
  expect(peopleRows(page.body).find((r) => r.id === bob.id)?.age).toBe(42)

  // 4. Bad input → 400 with the reason, nothing stored.
  const bad: [string, string, string][] = [
    ['', '30', 'Name is required'],
    ['   ', '30', 'Name is required'],
    ['Ann', 'abc', 'Age must be a number'],
    ['Ann', '-3', 'Age cannot be negative'],
    ['Ann', '2.5', 'Age must be a whole number'],
    ['Ann', '', 'Age is required'],
    ['Ann', '1e1', 'digits only'],
    ['Ann', '151', 'at most 150'],
  ]
  for (const [name, age, reason] of bad) {
    const r = await http(people, { method: 'POST', body: form({ action: 'add', name, age }) })
    expect(r.status, `${JSON.stringify([name, age])}`).toBe(400)
    expect(r.body).toContain(reason)
    expect(r.body).toContain('400 Bad Request')
  }
  // The 400 page echoes the input escaped.
  const echoed = await http(people, {
    method: 'POST',
    body: form({ action: 'add', name: '<b>x</b>', age: '<i>' }),
  })
  expect(echoed.status).toBe(400)
  expect(echoed.body).toContain('value="&lt;b&gt;x&lt;/b&gt;"')
  expect(echoed.body).not.toContain('<b>x</b>')
  expect(peopleRows((await http(people)).body)).toHaveLength(3)

  // 5. Unknown person, unknown action, wrong content type, wrong method.
  expect((await http(people, { method: 'POST', body: form({ action: 'birthday', id: '999' }) })).status).toBe(
    404,
  )
  expect(
    (await http(people, { method: 'POST', body: form({ action: 'birthday', id: '__proto__' }) })).status,
  ).toBe(404)
  expect((await http(people, { method: 'POST', body: form({ action: 'fly' }) })).status).toBe(400)
  const json = await http(people, { method: 'POST', body: '{"name":"x"}', contentType: 'application/json' })
  expect(json.status).toBe(415)
  expect(json.body).toContain('application/x-www-form-urlencoded')

  // 6. Concurrent birthdays from parallel requests: none lost.
  const replies = await load(people, 16, 8, { method: 'POST', body: form({ action: 'birthday', id: '1' }) })
  expect(failures(replies, 303)).toEqual([])
  expect(peopleRows((await http(people)).body).find((r) => r.id === '1')?.age).toBe(27 + 16)
}
