/**
 * The dict key hash, part of the file format (FORMAT.md "Key hash"): 32-bit FNV-1a
 * over the UTF-16 code units of the key (not over bytes), so every process and every
 * future version computes the same value without encoding the string.
 *
 *   h = 2166136261; for each code unit cu: h ^= cu; h = h * 16777619 mod 2^32
 */
export function hashKey(s: string): number {
  return hash32(s) >>> 0
}

/** The same hash as a signed 32-bit integer (a Smi in V8: the hot path uses this). */
export function hash32(s: string): number {
  let h = 0x811c9dc5 | 0
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 16777619)
  }
  return h
}
