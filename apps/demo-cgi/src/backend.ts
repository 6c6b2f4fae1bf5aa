/** The one place the demo imports the persist packages. */

export { PBase, register } from '@persist/pbase'
export { isPersistError, open, PersistError, type Store } from '@persist/persist'
