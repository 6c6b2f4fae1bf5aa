import { ALIGN } from '@persist/heap'
import { describe, expect, it } from 'vitest'

describe('heap addon', () => {
  it('loads', () => {
    expect(ALIGN).toBe(16)
  })
})
