// Test documents: { meta: { count, title }, items: [ { id, name, tags, score } … ] }
// grown until JSON.stringify(doc).length reaches the target size in bytes.
export function makeDoc(targetBytes) {
  const doc = { meta: { count: 0, title: 'document' }, items: [] }
  const base = JSON.stringify(doc).length
  const item = (i) => ({ id: i, name: `item-${i}`, tags: ['alpha', 'beta'], score: i * 1.5 })
  const per = JSON.stringify(item(100000)).length + 1
  const n = Math.max(0, Math.round((targetBytes - base) / per))
  for (let i = 0; i < n; i++) doc.items.push(item(i))
  return doc
}

export const KiB = 1024
export const MiB = 1024 * 1024
export const GiB = 1024 * MiB

export function fmtBytes(n) {
  if (n >= GiB) return `${+(n / GiB).toFixed(2)} GiB`
  if (n >= MiB) return `${+(n / MiB).toFixed(2)} MiB`
  if (n >= KiB) return `${+(n / KiB).toFixed(2)} KiB`
  return `${n} B`
}
