import { FORMAT_VERSION, PAGE_SIZE } from '@persist/pager'
import { describe, expect, it } from 'vitest'

describe('pager addon', () => {
  it('loads and reports the format constants', () => {
    expect(FORMAT_VERSION).toBe(1)
    expect(PAGE_SIZE).toBe(4096)
  })
})
