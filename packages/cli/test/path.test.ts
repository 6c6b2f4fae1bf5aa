// 6.x PATH syntax (in-process; the commands use the same functions).

import { formatPath, parsePath } from '@persist/cli'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

describe('6 PATH syntax', () => {
  it('6.1 parses dots, indices, quoted keys and the root', () => {
    expect(parsePath('people.joe')).toEqual(['people', 'joe'])
    expect(parsePath('items[3]')).toEqual(['items', 3])
    expect(parsePath('people["a b"].tags[0]')).toEqual(['people', 'a b', 'tags', 0])
    expect(parsePath('$')).toEqual([])
    expect(parsePath('')).toEqual([])
    expect(parsePath('$.a[1]')).toEqual(['a', 1])
    expect(parsePath('$x.y')).toEqual(['$x', 'y'])
    expect(parsePath('["$"]')).toEqual(['$'])
  })

  it('6.2 rejects malformed paths with the position and PERSIST_INVALID', () => {
    for (const bad of ['a..b', '.a', 'a[', 'a[x]', 'a["x]', 'a[1]b', 'a[-1]']) {
      expect(() => parsePath(bad), bad).toThrow(expect.objectContaining({ code: 'PERSIST_INVALID' }))
    }
    expect(() => parsePath('a..b')).toThrow(/at character 3: empty key/)
  })

  it('6.3 formatPath is the inverse of parsePath for any keys', () => {
    const seg = fc.oneof(fc.string(), fc.nat(), fc.constantFrom('$', '.', '[', ']', '"', 'a.b', '0', '01'))
    fc.assert(
      fc.property(fc.array(seg, { maxLength: 6 }), (segs) => {
        expect(parsePath(formatPath(segs))).toEqual(segs)
      }),
      { numRuns: 2000 },
    )
  })
})
