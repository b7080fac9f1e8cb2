// The table of live tasks and exchanges: ids are never reused, a freed slot is taken again.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SlotTable } from '../src/lua-bridge/slots.ts'

test('a slot table gives unique ids, finds live entries only, and reuses freed slots', () => {
  const t = new SlotTable<string>()
  const a = t.add('a')
  const b = t.add('b')
  assert.notEqual(a, b)
  assert.equal(t.get(a), 'a')
  assert.equal(t.get(b), 'b')
  assert.equal(t.size, 2)
  assert.equal(t.delete(a), true)
  assert.equal(t.delete(a), false)
  assert.equal(t.get(a), undefined)
  const c = t.add('c')
  assert.notEqual(c, a, 'the freed slot is reused under a new id')
  assert.equal(t.get(a), undefined, 'a stale id does not find the entry now in its slot')
  assert.equal(t.get(c), 'c')
  assert.deepEqual(t.values().sort(), ['b', 'c'])
  assert.equal(t.size, 2)
  const ids = new Set<number>()
  for (let i = 0; i < 1000; i++) { const id = t.add('x'); ids.add(id); t.delete(id) }
  assert.equal(ids.size, 1000)
  assert.ok([...ids].every(Number.isSafeInteger))
})
