/**
 * The demo's pages as pure request → response functions over an open store.
 * The CGI programs (one process per request) and the cluster server (one store per
 * worker, many requests) both call these, so every mode serves identical pages.
 *
 * Atomicity: each page does all its store work inside one `store.transaction()`,
 * so concurrent processes never lose an increment and a failed request changes nothing.
 */
import { isPersistError, type Store } from './backend.js'
import { escapeHtml, layout } from './html.js'
import { Person } from './person.js'

export interface DemoRequest {
  method: string
  /** Path without the query string, e.g. "/people". */
  path: string
  /** Raw query string without the "?". */
  query: string
  contentType: string
  body: Buffer
}

export interface DemoResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/** Request bodies above this are refused with 413 (bytes). The add form needs < 200. */
export const MAX_BODY_BYTES = 64 * 1024

export const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  303: 'See Other',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
}

const HTML_HEADERS = { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }

function html(
  status: number,
  title: string,
  current: 'home' | 'counter' | 'people' | undefined,
  body: string,
) {
  return { status, headers: { ...HTML_HEADERS }, body: layout({ title, current, body }) }
}

export function errorPage(status: number, reasons: string[], extra = ''): DemoResponse {
  const title = `${status} ${STATUS_TEXT[status] ?? 'Error'}`
  const items = reasons.map((r) => `<li>${escapeHtml(r)}</li>`).join('')
  return html(
    status,
    title,
    undefined,
    `<section class="card error"><h1>${escapeHtml(title)}</h1><ul class="reasons">${items}</ul>${extra}</section>`,
  )
}

function methodNotAllowed(allow: string): DemoResponse {
  const res = errorPage(405, [`This page accepts ${allow} only.`])
  res.headers.Allow = allow
  return res
}

function redirect(location: string): DemoResponse {
  return {
    status: 303,
    headers: { Location: location, ...HTML_HEADERS },
    body: layout({ title: 'Redirect', body: `<p><a href="${escapeHtml(location)}">Continue</a></p>` }),
  }
}

/** The landing page; static, it never touches the store. */
export function indexPage(): DemoResponse {
  return html(
    200,
    'Home',
    'home',
    `<section class="card"><h1>persist demo</h1>
<p>Two pages backed by one memory-mapped <strong>persist</strong> store. Under CGI every request is a separate
process opening the store; in cluster mode long-running workers share it live.</p>
<ul><li><a href="/counter">Visitor counter</a> — <code>root.visits += 1</code> on every visit.</li>
<li><a href="/people">People</a> — <code>Person extends PBase</code> objects stored and re-instantiated.</li></ul>
</section>`,
  )
}

/** The seed's counter: `root['x'] += 1`, then "You are visitor N". */
export function counterPage(store: Store, req: DemoRequest): DemoResponse {
  if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed('GET, HEAD')
  let visits = 0
  store.transaction(() => {
    const root = store.root
    root.visits = (root.visits ?? 0) + 1
    visits = root.visits
  })
  return html(
    200,
    'Visitor counter',
    'counter',
    `<section class="card"><h1>Visitor counter</h1>
<p class="visitor">You are visitor <span class="big" id="visits">${visits}</span> to visit this site!</p>
<p class="muted">Every page view runs <code>root.visits += 1</code> in the store, atomically across processes.</p>
</section>`,
  )
}

export type Validation = { ok: true; name: string; age: number } | { ok: false; reasons: string[] }

/** Longest accepted name (UTF-16 code units). */
export const MAX_NAME_LENGTH = 80
/** Oldest accepted age (years). */
export const MAX_AGE = 150

/** Checks the add-person form; every reason is a sentence the user can act on. */
export function validatePerson(nameField: string | null, ageField: string | null): Validation {
  const reasons: string[] = []
  const name = (nameField ?? '').trim()
  if (name === '') reasons.push('Name is required: enter a name.')
  else if (name.length > MAX_NAME_LENGTH)
    reasons.push(`Name is too long: use at most ${MAX_NAME_LENGTH} characters.`)
  const ageText = (ageField ?? '').trim()
  const age = Number(ageText)
  if (ageText === '') reasons.push('Age is required: enter a whole number of years.')
  else if (!Number.isFinite(age)) reasons.push(`Age must be a number: "${ageText}" is not one.`)
  else if (age < 0) reasons.push('Age cannot be negative.')
  else if (!Number.isInteger(age)) reasons.push('Age must be a whole number of years.')
  else if (!/^\d+$/.test(ageText)) reasons.push(`Age must be written with digits only: "${ageText}".`)
  else if (age > MAX_AGE) reasons.push(`Age must be at most ${MAX_AGE}.`)
  return reasons.length ? { ok: false, reasons } : { ok: true, name, age }
}

interface PersonRow {
  id: string
  name: string
  age: number
}

/** Seeds the seed's two people on first use, like its `if not root.has_key('Joe')`. */
function ensurePeople(root: any): any {
  if (root.people == null) {
    root.people = {}
    root.people['1'] = new Person('Joe', 27)
    root.people['2'] = new Person('John', 29)
    root.nextPersonId = 3
  }
  return root.people
}

function addForm(name = '', age = ''): string {
  return `<form class="add" method="post" action="/people">
<input type="hidden" name="action" value="add">
<label>Name <input name="name" value="${escapeHtml(name)}" maxlength="${MAX_NAME_LENGTH}" autocomplete="off"></label>
<label>Age <input name="age" value="${escapeHtml(age)}" inputmode="numeric" size="4"></label>
<button type="submit">Add person</button>
</form>`
}

function peopleList(rows: PersonRow[]): string {
  if (rows.length === 0) return '<p class="muted">Nobody yet.</p>'
  const body = rows
    .map(
      (p) =>
        `<tr data-id="${escapeHtml(p.id)}"><td class="name">${escapeHtml(p.name)}</td>` +
        `<td class="num age">${p.age}</td><td><form class="inline" method="post" action="/people">` +
        `<input type="hidden" name="action" value="birthday"><input type="hidden" name="id" value="${escapeHtml(p.id)}">` +
        `<button class="secondary" type="submit">Birthday +1</button></form></td></tr>`,
    )
    .join('\n')
  return `<table><thead><tr><th>Name</th><th>Age</th><th></th></tr></thead><tbody>\n${body}\n</tbody></table>`
}

function readPeople(store: Store): PersonRow[] {
  const rows: PersonRow[] = []
  store.transaction(() => {
    const people = ensurePeople(store.root)
    for (const id of Object.keys(people)) {
      const p = people[id]
      rows.push({ id, name: String(p.name), age: Number(p.age) })
    }
  })
  return rows.sort((a, b) => Number(a.id) - Number(b.id) || a.id.localeCompare(b.id))
}

/** The people page: list, add (POST action=add) and birthday (POST action=birthday). */
export function peoplePage(store: Store, req: DemoRequest): DemoResponse {
  if (req.method === 'GET' || req.method === 'HEAD') {
    const rows = readPeople(store)
    return html(
      200,
      'People',
      'people',
      `<section class="card"><h1>People</h1>
<p class="muted">Each row is a <code>Person</code> object (<code>class Person extends PBase</code>) living in the store;
“Birthday” calls <code>person.birthday()</code>, which does <code>this.age += 1</code> in place.</p>
${peopleList(rows)}
</section>
<section class="card"><h2>Add a person</h2>
${addForm()}
</section>`,
    )
  }
  if (req.method !== 'POST') return methodNotAllowed('GET, HEAD, POST')
  const type = req.contentType.split(';')[0].trim().toLowerCase()
  if (type !== 'application/x-www-form-urlencoded') {
    return errorPage(415, [
      `Send the form as application/x-www-form-urlencoded (got "${req.contentType || 'no content type'}").`,
    ])
  }
  const form = new URLSearchParams(req.body.toString('utf8'))
  const action = form.get('action')
  if (action === 'add') {
    const v = validatePerson(form.get('name'), form.get('age'))
    if (!v.ok) {
      return errorPage(
        400,
        v.reasons,
        `<h2>Try again</h2>${addForm(form.get('name') ?? '', form.get('age') ?? '')}<p><a href="/people">Back to the list</a></p>`,
      )
    }
    store.transaction(() => {
      const root = store.root
      const people = ensurePeople(root)
      const id = Number(root.nextPersonId ?? 1)
      people[String(id)] = new Person(v.name, v.age)
      root.nextPersonId = id + 1
    })
    return redirect('/people')
  }
  if (action === 'birthday') {
    const id = form.get('id') ?? ''
    let found = false
    store.transaction(() => {
      const people = ensurePeople(store.root)
      // Ids are decimal strings we issued; anything else ("__proto__", "") names nobody.
      const p = /^[0-9]{1,15}$/.test(id) ? people[id] : undefined
      if (p instanceof Person) {
        p.birthday()
        found = true
      }
    })
    if (!found) return errorPage(404, [`There is no person with id "${id}": reload the list and try again.`])
    return redirect('/people')
  }
  return errorPage(400, [`Unknown action "${action ?? ''}": use the buttons on the people page.`])
}

/** A PersistError (store locked, corrupt, …) as a page; anything else is a 500 without internals. */
export function failurePage(e: unknown): DemoResponse {
  if (isPersistError(e)) {
    if (e.code === 'PERSIST_LOCKED') {
      const res = errorPage(503, [`The store is busy (${e.code}): ${e.message}`, 'Retry in a moment.'])
      res.headers['Retry-After'] = '1'
      return res
    }
    return errorPage(500, [`The store reported ${e.code}: ${e.message}`])
  }
  return errorPage(500, ['The page failed unexpectedly; the server log has the details.'])
}

export type Page = (store: Store, req: DemoRequest) => DemoResponse

/** URL path → page. The same table drives lighttpd's aliases, the gateway and the cluster server. */
export const PAGES: Record<string, { script: string; page: Page }> = {
  '/counter': { script: 'counter.js', page: counterPage },
  '/people': { script: 'people.js', page: peoplePage },
}
