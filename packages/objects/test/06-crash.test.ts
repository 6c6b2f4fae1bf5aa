import { describe, expect, it } from 'vitest'
import { main } from '../scripts/crash.mjs'

describe('kill -9 during random object operations', () => {
  it('200 trials: the reopened graph equals the model at the last committed transaction; check() clean', async () => {
    const res = (await main(200, 1000)) as {
      trials: number
      corrupt: number
      lost: number
      committed: number
    }
    expect(res.trials).toBe(200)
    expect(res.corrupt).toBe(0)
    expect(res.lost).toBe(0)
    expect(res.committed).toBeGreaterThan(200) // the children really got work committed
  }, 240_000)
})
