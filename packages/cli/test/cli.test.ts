// 1.x: the `persist` executable on real store files, through child processes.
import {
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, fixture, tmpDir } from './helpers.js'

const { dir, cleanup } = tmpDir('cli')
const store = join(dir, 'sample.persist')
let facts: Record<string, number>

beforeAll(() => {
  facts = fixture('make-store.mjs', [store, 'sample'])
})
afterAll(cleanup)

describe('1.1 stats and check on a good store', () => {
  it('stats prints pages, heap, objects by type and free space', () => {
    const r = cli(['stats', store])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/objects:/)
    expect(r.stdout).toMatch(/dict: \d+/)
    expect(r.stdout).toMatch(/list: \d+/)
    expect(r.stdout).toMatch(/free space: /)
    expect(r.stdout).toMatch(/fileBytes: [\d,]+/)
  })

  it('stats --json is one JSON object with the object counts', () => {
    const r = cli(['stats', '--json', store])
    expect(r.code).toBe(0)
    const st = JSON.parse(r.stdout)
    expect(st.objects.object).toBe(1) // people.ann (class Person)
    expect(st.objects.dict).toBeGreaterThanOrEqual(7)
    expect(st.objects.list).toBe(3) // people.joe.tags, items, items[2]
    expect(st.fileBytes).toBeGreaterThan(0)
  })

  it('check exits 0 and says the store is consistent', () => {
    const r = cli(['check', store])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`ok: ${store} is consistent\n`)
  })

  it('an unreachable cycle awaiting gc is not a problem: exit 0, a note, garbage in --json; gc clears it', () => {
    const cyc = join(dir, 'cycle.persist')
    copyFileSync(store, cyc)
    fixture('make-store.mjs', [cyc, 'delete', 'loop']) // loop.self = loop: now garbage
    const r = cli(['check', cyc])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(
      new RegExp(
        `^ok: ${cyc} is consistent\nnote: 1 unreachable object\\(s\\) \\(\\d+ bytes\\) await \`persist gc `,
      ),
    )
    const j = JSON.parse(cli(['check', '--json', cyc]).stdout)
    expect(j.ok).toBe(true)
    expect(j.problems).toEqual([])
    expect(j.garbage.objects).toBe(1)
    expect(j.garbage.bytes).toBeGreaterThan(0)
    expect(cli(['gc', cyc]).stdout).toMatch(/freed 1 object\(s\)/)
    expect(cli(['check', cyc]).stdout).toBe(`ok: ${cyc} is consistent\n`)
  })
})

describe('1.2 check on damaged files', () => {
  it('a flipped reference count is listed and check exits 1', () => {
    const bad = join(dir, 'bad-refs.persist')
    copyFileSync(store, bad)
    // record header +8 = rc_refs (FORMAT.md "Records"): people.joe is referenced twice
    const fd = openSync(bad, 'r+')
    const b = Buffer.alloc(4)
    b.writeUInt32LE(7)
    writeSync(fd, b, 0, 4, facts.joe + 8)
    closeSync(fd)
    const r = cli(['check', bad])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^problem: .*/m)
    expect(r.stdout).toMatch(new RegExp(`0x${facts.joe.toString(16)}`))
    expect(r.stderr).toMatch(/^persist: .*problem\(s\) found \(PERSIST_CORRUPT\)\n$/)
    const j = cli(['check', '--json', bad])
    expect(j.code).toBe(1)
    expect(JSON.parse(j.stdout).ok).toBe(false)
  })

  it('a smashed record header is reported, never a crash', () => {
    const bad = join(dir, 'bad-record.persist')
    copyFileSync(store, bad)
    const fd = openSync(bad, 'r+')
    writeSync(fd, Buffer.alloc(16, 0xa5), 0, 16, facts.people)
    closeSync(fd)
    const r = cli(['check', bad])
    expect(r.code).toBe(1)
    expect(r.stdout + r.stderr).toMatch(/problem/)
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/) // one clear line, no stack trace
  })

  it('dump and compact of a store with a wild offset fail with one line, never a crash, and compact leaves it as it was', () => {
    const bad = join(dir, 'bad-offset.persist')
    copyFileSync(store, bad)
    const fd = openSync(bad, 'r+')
    writeSync(fd, Buffer.alloc(8, 0xff), 0, 8, facts.people + 32) // dc_entries of people → far outside the file
    closeSync(fd)
    const before = readFileSync(bad)
    for (const args of [
      ['dump', bad],
      ['compact', bad],
    ]) {
      const r = cli(args)
      expect(r.code, args[0]).toBe(3)
      expect(r.stderr, args[0]).toMatch(
        /^persist: .*the store looks damaged; run `persist check .*` .*\(PERSIST_CORRUPT\)\n$/,
      )
    }
    // everything after page 0 (whose lock area every opener writes) is byte-identical
    expect(readFileSync(bad).subarray(4096).equals(before.subarray(4096))).toBe(true)
    expect(existsSync(`${bad}.compact-tmp`)).toBe(false)
    expect(cli(['check', bad]).code).toBe(1)
  })

  it('a file that is not a store: exit 2, one line with a code', () => {
    const junk = join(dir, 'junk.bin')
    writeFileSync(junk, Buffer.alloc(300_000, 7))
    const r = cli(['check', junk])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^persist: .* \(PERSIST_NOT_STORE\)\n$/)
  })

  it('a missing file: exit 2 (PERSIST_NOT_FOUND), and no file is created', () => {
    const missing = join(dir, 'nope.persist')
    const r = cli(['stats', missing])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^persist: .*\(PERSIST_NOT_FOUND\)\n$/)
    expect(existsSync(missing)).toBe(false)
  })
})

describe('1.3 dump', () => {
  it('dumps the whole graph as persist JSON with tagged special values', () => {
    const r = cli(['dump', store])
    expect(r.code).toBe(0)
    const v = JSON.parse(r.stdout)
    expect(v.visits).toBe(42)
    expect(v.ratio).toBe(0.25)
    expect(v.negzero).toEqual({ $persist: 'number', value: '-0' })
    expect(v.nan).toEqual({ $persist: 'number', value: 'NaN' })
    expect(v.big).toEqual({ $persist: 'bigint', value: '123456789012345678901234567890' })
    expect(v.when).toEqual({ $persist: 'date', value: '2026-11-23T12:00:00.000Z' })
    expect(v.bytes).toEqual({ $persist: 'bytes', type: 'Uint8Array', base64: 'AAEC+g==' })
    expect(v.floats.type).toBe('Float64Array')
    expect(v.nothing).toEqual({ $persist: 'undefined' })
    expect(v.text).toBe('héllo wörld — ✓ 🎉 \ud800 lone')
    expect(v.tagged).toEqual({ $persist: 'dict', value: { $persist: 'not a tag', n: 1 } })
    expect(v.people.ann).toEqual({ $persist: 'object', class: 'Person', value: { name: 'Ann', age: 31 } })
    expect(v.people.joe).toEqual({ name: 'Joe', age: 27, tags: ['admin', 'ops'] })
    expect(v.team.lead).toEqual({ $persist: 'ref', path: '$.people.joe' })
    expect(v.loop.self).toEqual({ $persist: 'ref', path: '$.loop' })
  })

  it('dumps a sub-path: people.joe, items[3], a quoted key', () => {
    expect(JSON.parse(cli(['dump', store, 'people.joe']).stdout)).toEqual({
      name: 'Joe',
      age: 27,
      tags: ['admin', 'ops'],
    })
    expect(JSON.parse(cli(['dump', store, 'items[3]']).stdout)).toEqual({ four: 4 })
    expect(JSON.parse(cli(['dump', store, 'people.joe.tags[1]']).stdout)).toBe('ops')
    expect(JSON.parse(cli(['dump', store, '["weird key.with \\"dots\\""]']).stdout)).toEqual({ ok: 1 })
  })

  it('--indent pretty-prints the same value', () => {
    const r = cli(['dump', '--indent', '2', store, 'people.joe'])
    expect(r.stdout).toBe(`${JSON.stringify({ name: 'Joe', age: 27, tags: ['admin', 'ops'] }, null, 2)}\n`)
  })

  it('--ndjson writes one {"key","value"} line per top-level entry', () => {
    const r = cli(['dump', '--ndjson', store])
    expect(r.code).toBe(0)
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.length).toBe(facts.size)
    expect(lines[0]).toEqual({ key: 'visits', value: 42 })
    expect(lines.find((l) => l.key === 'items').value).toEqual([1, 'two', [3], { four: 4 }])
    const items = cli(['dump', '--ndjson', store, 'items'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(items.map((l) => l.key)).toEqual([0, 1, 2, 3])
  })

  it('a missing path: exit 3 with a message naming the missing step', () => {
    const r = cli(['dump', store, 'people.bob.age'])
    expect(r.code).toBe(3)
    expect(r.stderr).toBe(
      'persist: people has no key "bob" (see `persist dump FILE people`) (PERSIST_NOT_FOUND)\n',
    )
    const idx = cli(['dump', store, 'items[9]'])
    expect(idx.stderr).toMatch(/items has 4 item\(s\): index 9 is past the end/)
  })

  it('a malformed path is a usage error (exit 2)', () => {
    const r = cli(['dump', store, 'people..joe'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(
      /^persist: bad PATH "people..joe" at character 8: empty key .*\(PERSIST_INVALID\)\n$/,
    )
  })

  it('-o writes to a file', () => {
    const out = join(dir, 'out.json')
    expect(cli(['dump', '-o', out, store, 'items']).code).toBe(0)
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual([1, 'two', [3], { four: 4 }])
  })
})

describe('1.4 dump → load round trip', () => {
  it('load of a dump reproduces the store exactly (dump of the copy is byte-identical)', () => {
    const first = cli(['dump', store])
    const copy = join(dir, 'copy.persist')
    const l = cli(['load', copy], { input: first.stdout })
    expect(l.stderr).toMatch(/^loaded 20 entries into \$ of .* in 1 transaction\(s\)\n$/)
    expect(l.code).toBe(0)
    const second = cli(['dump', copy])
    expect(second.stdout).toBe(first.stdout)
    expect(cli(['check', copy]).code).toBe(0)
  })

  it('shared records stay shared and cycles stay cycles after the round trip', () => {
    const copy = join(dir, 'copy2.persist')
    cli(['load', copy], { input: cli(['dump', store]).stdout })
    const st = JSON.parse(cli(['stats', '--json', copy]).stdout)
    const orig = JSON.parse(cli(['stats', '--json', store]).stdout)
    expect(st.objects).toEqual(orig.objects) // same number of records of each kind: nothing duplicated
  })

  it('NDJSON round trip with small batches (one transaction per 5 entries)', () => {
    const nd = cli(['dump', '--ndjson', store]).stdout
    const copy = join(dir, 'copy3.persist')
    const l = cli(['load', '--ndjson', '--batch', '5', copy], { input: nd })
    expect(l.code).toBe(0)
    expect(l.stderr).toMatch(/in 4 transaction\(s\)/)
    expect(cli(['dump', copy]).stdout).toBe(cli(['dump', store]).stdout)
  })

  it('load --path into a new dict and into a list (items appended)', () => {
    const copy = join(dir, 'copy4.persist')
    expect(cli(['load', '--path', 'imported', copy], { input: '{"a": 1, "b": [true]}' }).code).toBe(0)
    expect(cli(['load', '--path', 'imported.b', copy], { input: '[2, {"c": null}]' }).code).toBe(0)
    expect(JSON.parse(cli(['dump', copy]).stdout)).toEqual({ imported: { a: 1, b: [true, 2, { c: null }] } })
  })

  it('invalid JSON input: exit 3, earlier batches stay committed and the message says so', () => {
    const copy = join(dir, 'copy5.persist')
    const r = cli(['load', '--batch', '1', copy], { input: '{"a": 1, "b": 2, "c": oops}' })
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(
      /^persist: the input is not valid JSON: .* 2 entries were loaded and committed before this \(PERSIST_INVALID\)\n$/,
    )
    expect(JSON.parse(cli(['dump', copy]).stdout)).toEqual({ a: 1, b: 2 })
  })

  it('--atomic: invalid input leaves nothing behind (one transaction for the whole input)', () => {
    const copy = join(dir, 'copy7.persist')
    const r = cli(['load', '--atomic', '--batch', '1', copy], { input: '{"a": 1, "b": 2, "c": oops}' })
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/0 entries were loaded/)
    expect(JSON.parse(cli(['dump', copy]).stdout)).toEqual({})
    const ok = cli(['load', '--atomic', copy], { input: '{"a": 1, "b": 2}' })
    expect(ok.stderr).toMatch(/loaded 2 entries into \$ of .* in 1 transaction\(s\)/)
    expect(JSON.parse(cli(['dump', copy]).stdout)).toEqual({ a: 1, b: 2 })
  })

  it('tagged single values load back: a root with a "$persist" key, a class object dumped on its own', () => {
    const copy = join(dir, 'copy8.persist')
    const rootDump = '{"$persist":"dict","value":{"$persist":"x","a":1}}\n'
    expect(cli(['load', copy], { input: rootDump }).code).toBe(0)
    expect(cli(['dump', copy]).stdout).toBe(rootDump)
    const ann = cli(['dump', store, 'people.ann']).stdout
    expect(JSON.parse(ann).$persist).toBe('object')
    const l = cli(['load', '--path', 'ann', copy], { input: ann })
    expect(l.stderr).toMatch(/^loaded 1 entry into ann of /)
    expect(cli(['dump', copy, 'ann']).stdout).toBe(ann)
    const r = cli(['load', copy], { input: ann })
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(
      /the input is a single "object" value, not a dict of entries: load it with --path NAME/,
    )
  })

  it('loading an array into the root dict is refused with a clear message', () => {
    const copy = join(dir, 'copy6.persist')
    const r = cli(['load', copy], { input: '[1,2]' })
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/\$ is a dict: load a JSON object into it/)
  })
})

describe('1.5 gc, help and usage', () => {
  it('gc reports what it freed', () => {
    const r = cli(['gc', store])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^gc .*: freed \d+ object\(s\), .*\n$/)
  })

  it('--help on every command, exit 0', () => {
    for (const c of ['stats', 'check', 'dump', 'load', 'compact', 'gc', 'watch']) {
      const r = cli([c, '--help'])
      expect(r.code, c).toBe(0)
      expect(r.stdout, c).toMatch(new RegExp(`^Usage: persist ${c} `))
    }
    const top = cli(['--help'])
    expect(top.stdout).toMatch(/Exit codes: 0 success · 1 check found problems · 2 usage error/)
  })

  it('unknown command, unknown option, missing argument: exit 2 with one line', () => {
    const u = cli(['frobnicate'])
    expect(u.code).toBe(2)
    expect(u.stderr).toBe("persist: unknown command 'frobnicate'; see `persist --help` (PERSIST_INVALID)\n")
    const r = cli(['dump'])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(
      "persist: missing required argument 'file'; see `persist --help` (PERSIST_INVALID)\n",
    )
    const o = cli(['stats', '--frob', 'x.persist'])
    expect(o.code).toBe(2)
    expect(o.stderr).toMatch(/^persist: unknown option '--frob'.*\(PERSIST_INVALID\)\n$/)
    const n = cli(['dump', '--indent', 'x', 'x.persist'])
    expect(n.code).toBe(2)
    expect(n.stderr).toBe('persist: --indent must be an integer from 0 to 10, not "x" (PERSIST_INVALID)\n')
  })
})
