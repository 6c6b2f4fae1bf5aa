import { PBase, register } from './backend.js'

/** The seed's `person(pbase)`: a plain class whose instances live in the store. */
export class Person extends PBase {
  name = ''
  age = 0
  constructor(name = '', age = 0) {
    super()
    this.name = name
    this.age = age
  }
  /** One year older; the change is made in place in the store. */
  birthday(): void {
    this.age += 1
  }
}

// Every process that reads Person objects back must register the class.
register(Person)
