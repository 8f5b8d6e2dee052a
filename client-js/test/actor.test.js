/**
 * Actor handles against a real server running test/app.py: calls, events,
 * error codes, queues, and calls around a lost connection.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CollabError } from '../index.js'
import { nextEvent, record, untilStatus, useServer, waitFor } from './helpers.js'

/** Rejects with a CollabError whose code is `code`. */
function withCode (code) {
  return (error) => error instanceof CollabError && error.code === code
}

describe('actors', () => {
  const ctx = useServer({ app: 'app:registry' })

  test('calls return results; events reach the connected handles', async () => {
    const ann = ctx.clients.make(ctx.server.wsUrl).actor('tally', 'events', { params: { name: 'ann' } })
    const annSeen = record(ann, ['welcome', 'changed'])
    const bob = ctx.clients.make(ctx.server.wsUrl).actor('tally', 'events', { params: { name: 'bob' } })
    const bobSeen = record(bob, ['changed'])
    await bob.ready // else ann's first change may be broadcast before bob is connected
    // Calls made before the connection is up wait for it: the actor sees who calls.
    assert.deepEqual(await ann.call('add', 2), { count: 2, by: 'ann' })
    assert.deepEqual(await bob.callWith('add', { args: [3], kwargs: { note: 'kw' } }), { count: 5, by: 'bob' })
    assert.equal(await bob.call('count'), 5)

    assert.deepEqual(annSeen[0], ['welcome', { name: 'ann' }])
    await waitFor(() => annSeen.length === 3 && bobSeen.length === 2, 'both changes at both')
    assert.deepEqual(annSeen.slice(1).map(([, data]) => data), [
      { count: 2, by: 'ann', note: '' },
      { count: 5, by: 'bob', note: 'kw' }
    ])
    assert.deepEqual(bobSeen.map(([, data]) => data.count), [2, 5])
  })

  test('errors carry codes: the actor\'s own, unknown_action, invalid_arguments, unknown_actor_type', async () => {
    const client = ctx.clients.make(ctx.server.wsUrl)
    const tally = client.actor('tally', 'errors', { params: { name: 'ann' } })
    await assert.rejects(tally.call('refuse'), (error) => withCode('refused')(error) && error.message === 'refused on purpose')
    await assert.rejects(tally.call('nope'), withCode('unknown_action'))
    await assert.rejects(tally.call('add', 1, 2, 3), withCode('invalid_arguments'))
    assert.equal(await tally.call('count'), 0) // the refusals changed nothing

    const unknown = client.actor('nosuch', 'k')
    await assert.rejects(unknown.ready, withCode('unknown_actor_type'))
    await assert.rejects(unknown.call('x'), withCode('unknown_actor_type'))
    assert.throws(() => client.actor('Bad Type', 'k'), TypeError)
  })

  test('a refused connection rejects ready and every call with the actor\'s code', async () => {
    const client = ctx.clients.make(ctx.server.wsUrl)
    const errors = record(client, ['error'])
    const nameless = client.actor('tally', 'refused', { params: {} })
    const waiting = nameless.call('count')
    await assert.rejects(nameless.ready, withCode('name_required'))
    await assert.rejects(waiting, withCode('name_required'))
    assert.equal(errors[0][1].code, 'name_required')
    // The refused handle is closed: the same actor can be opened again.
    const named = client.actor('tally', 'refused', { params: { name: 'ann' } })
    assert.equal(await named.call('count'), 0)
  })

  test('actor types may contain hyphens, as on the server', async () => {
    const book = ctx.clients.make(ctx.server.wsUrl).actor('order-book', 'k', { params: { name: 'ann' } })
    const seen = record(book, ['changed'])
    assert.deepEqual(await book.call('add', 4), { count: 4, by: 'ann' })
    await waitFor(() => seen.length === 1, 'the change event')
    assert.equal(seen[0][1].count, 4)
  })

  test('connect: false calls without a connection (no events, no identity)', async () => {
    const client = ctx.clients.make(ctx.server.wsUrl)
    const anonymous = client.actor('tally', 'plain', { connect: false })
    await anonymous.ready
    assert.deepEqual(await anonymous.call('add', 1), { count: 1, by: null })
  })

  test('enqueue: a durable queue message reaches the consumer', async () => {
    const tally = ctx.clients.make(ctx.server.wsUrl).actor('tally', 'queue', { params: { name: 'ann' } })
    const job = nextEvent(tally, 'job')
    const { seq } = await tally.enqueue('jobs', { n: 1 })
    assert.ok(Number.isInteger(seq))
    assert.deepEqual(await job, { n: 1 })
    assert.deepEqual(await tally.call('jobs'), [{ n: 1 }])
    await assert.rejects(tally.enqueue('nope', {}), withCode('unknown_queue'))
  })

  test('disconnect() ends the connection and closes the handle', async () => {
    const client = ctx.clients.make(ctx.server.wsUrl)
    const tally = client.actor('tally', 'leaving', { params: { name: 'ann' } })
    await tally.ready
    await tally.disconnect()
    assert.equal(tally.connected, false)
    await assert.rejects(tally.call('count'), withCode('closed'))
    // Connecting again from the same socket works: the server ended the first connection.
    const again = client.actor('tally', 'leaving', { params: { name: 'ann' } })
    assert.deepEqual(await again.call('add', 1), { count: 1, by: 'ann' })
  })
})

describe('actors across a server crash', () => {
  const ctx = useServer({ perTest: true, app: 'app:registry' })

  test("a call in flight rejects with 'disconnected'; calls made offline are sent after the reconnect", async () => {
    const client = ctx.clients.make(ctx.server.wsUrl)
    const tally = client.actor('tally', 'crash', { params: { name: 'ann' } })
    const seen = record(tally, ['welcome', 'changed'])
    await tally.ready
    const inFlight = assert.rejects(tally.call('slow', 60), withCode('disconnected'))
    await ctx.server.kill()
    await inFlight

    await untilStatus(client, 'disconnected')
    const offline = tally.call('add', 5)
    await ctx.server.start()
    assert.deepEqual(await offline, { count: 5, by: 'ann' })
    // The handle connected again: it was welcomed twice and hears events.
    await waitFor(() => seen.filter(([event]) => event === 'welcome').length === 2, 'the second welcome')
    await waitFor(() => seen.some(([event, data]) => event === 'changed' && data.count === 5), 'the change event')
  })
})
