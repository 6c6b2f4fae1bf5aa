// Every workload, in run order. `groups` are what `run.mjs --only <group>` selects
// (the per-package bench entry points use --only pager|heap|objects|persist|peers).
export const workloads = [
  {
    id: 'counter',
    groups: ['persist', 'pager'],
    title: 'Counter to 10,000, each increment committed (process durability)',
  },
  {
    id: 'counter-full',
    groups: ['persist', 'pager'],
    title: 'Counter, each increment committed durably (full durability)',
  },
  {
    id: 'nested-update',
    groups: ['objects', 'persist'],
    title: 'Update one field of a nested value, 1 KiB → 1 MiB',
  },
  { id: 'read-nested', groups: ['objects', 'persist'], title: 'Read one nested field' },
  { id: 'iterate-dict', groups: ['objects', 'persist'], title: 'Iterate a 100,000-entry dict' },
  { id: 'multiprocess', groups: ['persist', 'pager'], title: '2 and 4 processes incrementing one counter' },
  {
    id: 'multiprocess-full',
    groups: ['persist', 'pager'],
    title: '4 processes committing durably (group commit)',
  },
  { id: 'open-time', groups: ['pager', 'persist'], title: 'Open time vs store size, 1 MiB → 4 GiB' },
  {
    id: 'foo-foobar',
    groups: ['objects', 'persist'],
    title: 'Seed 002: "Foo" → "Foobar" at the start of a large store',
  },
  { id: 'heap', groups: ['heap'], title: 'Heap alloc/free vs glibc malloc' },
  { id: 'space', groups: ['heap', 'objects', 'persist'], title: 'Space after insert, delete and compaction' },
]
