// Workload 4b: the multi-process counter with power-loss durability, where a store
// with group commit can share one fsync among the committers (issue 10).
import { runMultiprocess } from './multiprocess.mjs'

export default { run: (ctx) => runMultiprocess(ctx, 'full') }
