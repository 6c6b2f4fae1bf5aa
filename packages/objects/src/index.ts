export { isPersistError, PersistError, type PersistErrorCode } from '@persist/pager'
export * as format from './format.js'
export { OBJECTS_VERSION } from './format.js'
export { hashKey } from './hash.js'
export {
  type HeapLike,
  type ObjectHooks,
  Objects,
  type OpenOptions,
  type RecordKind,
  RecordRef,
} from './objects.js'
