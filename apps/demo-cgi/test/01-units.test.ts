// 1. Pure pieces: validation, escaping, CGI output format and parsing, lighttpd config.
import { describe, expect, it } from 'vitest'
import { formatCgiResponse } from '../dist/cgi/run.js'
import { parseCgiOutput } from '../dist/gateway.js'
import { escapeHtml } from '../dist/html.js'
import { lighttpdConfig } from '../dist/lighttpd.js'
import { errorPage, validatePerson } from '../dist/pages.js'

describe('1. units', () => {
  it('1.1 validatePerson accepts trimmed names and whole ages 0..150', () => {
    expect(validatePerson('  Joe ', ' 27 ')).toEqual({ ok: true, name: 'Joe', age: 27 })
    expect(validatePerson('Zoë', '0')).toEqual({ ok: true, name: 'Zoë', age: 0 })
    expect(validatePerson('x'.repeat(80), '150')).toMatchObject({ ok: true, age: 150 })
  })

  it('1.2 validatePerson gives every reason', () => {
    const reasons = (n: string | null, a: string | null) => {
      const v = validatePerson(n, a)
      return v.ok ? [] : v.reasons
    }
    expect(reasons(null, null)).toEqual([
      'Name is required: enter a name.',
      'Age is required: enter a whole number of years.',
    ])
    expect(reasons('x'.repeat(81), '3')).toEqual(['Name is too long: use at most 80 characters.'])
    expect(reasons('a', 'ten')).toEqual(['Age must be a number: "ten" is not one.'])
    expect(reasons('a', 'Infinity')).toEqual(['Age must be a number: "Infinity" is not one.'])
    expect(reasons('a', '-1')).toEqual(['Age cannot be negative.'])
    expect(reasons('a', '-0.5')).toEqual(['Age cannot be negative.'])
    expect(reasons('a', '3.5')).toEqual(['Age must be a whole number of years.'])
    expect(reasons('a', '0x10')).toEqual(['Age must be written with digits only: "0x10".'])
    expect(reasons('a', '151')).toEqual(['Age must be at most 150.'])
  })

  it('1.3 escapeHtml escapes the five HTML specials', () => {
    expect(escapeHtml(`<script>alert("x" & 'y')</script>`)).toBe(
      '&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;',
    )
    expect(escapeHtml(42)).toBe('42')
  })

  it('1.4 error pages escape their reasons', () => {
    const r = errorPage(400, ['bad <b>'])
    expect(r.status).toBe(400)
    expect(r.body).toContain('<li>bad &lt;b&gt;</li>')
  })

  it('1.5 formatCgiResponse and parseCgiOutput round-trip (Status, Location, body)', () => {
    const out = formatCgiResponse({
      status: 303,
      headers: { Location: '/people', 'Content-Type': 'text/html' },
      body: 'é',
    })
    expect(out.toString('utf8')).toBe(
      'Status: 303 See Other\r\nLocation: /people\r\nContent-Type: text/html\r\n\r\né',
    )
    expect(parseCgiOutput(out)).toEqual({
      status: 303,
      headers: { Location: '/people', 'Content-Type': 'text/html' },
      body: 'é',
    })
    expect(formatCgiResponse({ status: 200, headers: {}, body: 'x' }, true).toString()).toBe(
      'Status: 200 OK\r\n\r\n',
    )
  })

  it('1.6 parseCgiOutput follows RFC 3875 §6: LF-only lines, Location → 302, invalid output → undefined', () => {
    expect(parseCgiOutput(Buffer.from('Content-Type: text/plain\n\nhi'))).toEqual({
      status: 200,
      headers: { 'Content-Type': 'text/plain' },
      body: 'hi',
    })
    expect(parseCgiOutput(Buffer.from('Location: /x\n\n'))?.status).toBe(302)
    expect(parseCgiOutput(Buffer.from('Status: 404 Nope\r\nContent-Type: text/plain\r\n\r\n'))?.status).toBe(
      404,
    )
    expect(parseCgiOutput(Buffer.from('no header end'))).toBeUndefined()
    expect(parseCgiOutput(Buffer.from('X-Only: 1\n\nbody'))).toBeUndefined() // neither Content-Type nor Location
    expect(parseCgiOutput(Buffer.from('Status: abc\nContent-Type: t\n\n'))).toBeUndefined()
    expect(parseCgiOutput(Buffer.from('garbage line\n\n'))).toBeUndefined()
  })

  it('1.7 lighttpdConfig binds 127.0.0.1, maps the pages to the CGI programs, quotes paths', () => {
    const conf = lighttpdConfig(
      {
        bin: '/usr/sbin/lighttpd',
        host: '127.0.0.1',
        port: 8123,
        cgiDir: '/a "b"/cgi',
        env: { PERSIST_PATH: '/x\\y' },
      },
      '/docroot',
    )
    expect(conf).toContain('server.bind = "127.0.0.1"')
    expect(conf).toContain('server.port = 8123')
    expect(conf).toContain('"/counter" => "/a \\"b\\"/cgi/counter.js"')
    expect(conf).toContain('"/people" => "/a \\"b\\"/cgi/people.js"')
    expect(conf).toContain('"PERSIST_PATH" => "/x\\\\y"')
    expect(conf).toContain(`cgi.assign = (".js" => "${process.execPath}")`)
  })
})
