/**
 * Live objects by id, for tables that gain and lose an entry on every request (tasks, exchanges).
 * A Map would do, but under load its backing store is rebuilt again and again as it grows and
 * shrinks, and V8 links each discarded store to the next: once one of them is promoted to the old
 * generation, every later store and the objects they held survive each young collection (measured:
 * 10-20 MB kept per scavenge, 20-40 ms pauses, a p99 of 23 ms for requests that wait once). Here
 * the arrays only grow to the peak number of live entries and a freed slot is simply cleared.
 *
 * An id is serial × SLOTS + slot, the serial counting up to 2^31 before it starts again: a stale id
 * finds nothing unless two billion entries have come and gone since (and all ids stay exact in a
 * double).
 */
const SLOTS = 2 ** 21
const SERIALS = 2 ** 31

export class SlotTable<T> {
  readonly #items: Array<T | undefined> = []
  readonly #ids: number[] = []
  readonly #free: number[] = []
  #serial = 0
  #size = 0

  /** Entries held now. */
  get size (): number { return this.#size }

  /** Store item; returns its id. */
  add (item: T): number {
    const slot = this.#free.pop() ?? this.#items.length
    if (slot >= SLOTS) throw new Error('too many live entries')
    this.#serial = (this.#serial % SERIALS) + 1
    const id = this.#serial * SLOTS + slot
    this.#items[slot] = item
    this.#ids[slot] = id
    this.#size++
    return id
  }

  get (id: number): T | undefined {
    const slot = slotOf(id)
    return this.#ids[slot] === id ? this.#items[slot] : undefined
  }

  delete (id: number): boolean {
    const slot = slotOf(id)
    if (this.#ids[slot] !== id) return false
    this.#items[slot] = undefined
    this.#ids[slot] = 0
    this.#free.push(slot)
    this.#size--
    return true
  }

  /** The entries held now (a copy: the table may change while the caller goes through it). */
  values (): T[] {
    const out: T[] = []
    for (const item of this.#items) if (item !== undefined) out.push(item)
    return out
  }
}

/**
 * id % SLOTS, without the modulo: ids are doubles beyond 2^31, and V8 makes a double modulo a
 * call into C. Dividing by a power of two, flooring and multiplying back are exact here.
 */
function slotOf (id: number): number {
  return id - Math.floor(id / SLOTS) * SLOTS
}
