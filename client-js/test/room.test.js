/**
 * Chat rooms against a real server: every action and event between two
 * users, and the message stream kept whole across network cuts and crashes
 * (sends posted exactly once, missed messages caught up).
 */
import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, test } from 'node:test'
import { CollabError } from '../index.js'
import { nextEvent, record, TcpProxy, untilStatus, useServer, waitFor } from './helpers.js'

const ROOM_EVENTS = ['message', 'edit', 'delete', 'reaction', 'typing', 'read', 'presence']

/** The events named `name` in a record(), as their data. */
function named (seen, name) {
  return seen.filter(([event]) => event === name).map(([, data]) => data)
}

describe('rooms', () => {
  const ctx = useServer()

  test('send, history, edit, delete, react, typing, read and presence between two users', async () => {
    const ann = ctx.clients.make(ctx.server.wsUrl).room('general', { user: 'ann' })
    const annSeen = record(ann, ROOM_EVENTS)
    await ann.ready
    const bob = ctx.clients.make(ctx.server.wsUrl).room('general', { user: 'bob' })
    const bobSeen = record(bob, ROOM_EVENTS)
    await bob.ready
    await waitFor(() => named(annSeen, 'presence').some((p) => p.user === 'bob' && p.status === 'online'),
      'bob online for ann')

    const sent = await ann.send('hello', { reply_to: null })
    assert.equal(sent.message.body, 'hello')
    assert.equal(sent.message.user, 'ann')
    assert.deepEqual(sent.message.meta, { reply_to: null })
    const { seq } = sent
    await waitFor(() => named(bobSeen, 'message').some((m) => m.seq === seq), 'bob gets the message')
    await waitFor(() => ann.lastSeq === seq && bob.lastSeq === seq, 'lastSeq')

    const reacted = await bob.react(seq, '👍')
    assert.deepEqual(reacted.message.reactions, { '👍': ['bob'] })
    const reaction = await waitFor(() => named(annSeen, 'reaction')[0], 'the reaction')
    assert.deepEqual(reaction, { seq, user: 'bob', emoji: '👍', add: true, reactions: { '👍': ['bob'] } })
    await bob.react(seq, '👍', false)
    await waitFor(() => named(annSeen, 'reaction').some((r) => r.add === false), 'the reaction removed')

    await ann.edit(seq, 'hello, bob')
    const edited = await waitFor(() => named(bobSeen, 'edit')[0], 'the edit')
    assert.equal(edited.body, 'hello, bob')
    assert.ok(edited.edited_at > 0)
    await assert.rejects(bob.edit(seq, 'mine now'), (error) => error instanceof CollabError && error.code === 'forbidden')

    await bob.typing()
    await waitFor(() => named(annSeen, 'typing').some((t) => t.user === 'bob' && t.active), 'bob typing')
    assert.deepEqual((await ann.presence()).typing, ['bob'])
    await bob.typing(false)
    await waitFor(() => named(annSeen, 'typing').some((t) => t.user === 'bob' && !t.active), 'bob stopped')

    assert.deepEqual(await bob.unread(), { count: 1, last_read: 0, last_seq: seq })
    assert.deepEqual(await bob.read(seq), { user: 'bob', seq })
    await waitFor(() => named(annSeen, 'read').some((r) => r.user === 'bob' && r.seq === seq), 'the read receipt')
    assert.deepEqual(await bob.unread(), { count: 0, last_read: seq, last_seq: seq })
    assert.deepEqual(await ann.receipts(), { read: { bob: seq } })
    assert.deepEqual((await bob.presence()).users, [{ user: 'ann', devices: 1 }, { user: 'bob', devices: 1 }])

    const second = await bob.send('second')
    const page = await ann.history({ after: 0 })
    assert.deepEqual(page.messages.map((m) => [m.seq, m.body]), [[seq, 'hello, bob'], [second.seq, 'second']])
    assert.equal(page.has_more, false)
    const older = await ann.history({ before: second.seq, limit: 1 })
    assert.deepEqual(older.messages.map((m) => m.seq), [seq])

    await ann.delete(seq)
    const deleted = await waitFor(() => named(bobSeen, 'delete')[0], 'the delete')
    assert.equal(deleted.deleted, true)
    assert.equal(deleted.body, '')

    // Every message reached both users once, in order.
    await waitFor(() => named(annSeen, 'message').length === 2 && named(bobSeen, 'message').length === 2, 'both messages')
    for (const seen of [annSeen, bobSeen]) {
      assert.deepEqual(named(seen, 'message').map((m) => m.seq), [seq, second.seq])
    }

    await bob.leave()
    await waitFor(() => named(annSeen, 'presence').some((p) => p.user === 'bob' && p.status === 'offline'),
      'bob offline for ann')
    await assert.rejects(bob.send('after leaving'), (error) => error.code === 'closed')
  })

  test('errors carry the server code: unknown_action, invalid_user', async () => {
    const client = ctx.clients.make(ctx.server.wsUrl)
    const room = client.room('errors', { user: 'ann' })
    await assert.rejects(room.call('no_such_action'), (error) =>
      error instanceof CollabError && error.code === 'unknown_action' && /no_such_action/.test(error.message))
    await assert.rejects(room.history({ limit: 1000 }), (error) => error.code === 'invalid_arguments')

    const refused = client.room('errors-too', { user: 'x'.repeat(200) })
    const reported = nextEvent(client, 'error')
    await assert.rejects(refused.ready, (error) => error.code === 'invalid_user')
    assert.equal((await reported).code, 'invalid_user')
    await assert.rejects(refused.send('hi'), (error) => error.code === 'invalid_user')
    assert.throws(() => client.room('errors', { user: 'ann' }), /already open/)
    assert.throws(() => client.room('nameless', {}), /needs the user id/)
  })

  test('a client joining a room with history starts after it: no old message is emitted', async () => {
    const ann = ctx.clients.make(ctx.server.wsUrl).room('joining', { user: 'ann' })
    await ann.send('one')
    const { seq } = await ann.send('two')
    const bob = ctx.clients.make(ctx.server.wsUrl).room('joining', { user: 'bob' })
    const bobSeen = record(bob, ['message'])
    await bob.ready
    assert.equal(bob.lastSeq, seq)
    const three = await ann.send('three')
    await waitFor(() => named(bobSeen, 'message').length === 1, 'the new message')
    assert.deepEqual(named(bobSeen, 'message').map((m) => m.seq), [three.seq])
  })
})

describe('rooms across disconnects', () => {
  const ctx = useServer({ perTest: true })
  let proxy

  beforeEach(async () => { proxy = await new TcpProxy(ctx.server.port).start() })
  afterEach(() => proxy.cut())

  /** ann connects directly, bob through the proxy, so bob alone can be cut off. */
  async function annAndBob (room) {
    const ann = ctx.clients.make(ctx.server.wsUrl).room(room, { user: 'ann' })
    const bobClient = ctx.clients.make(proxy.wsUrl)
    const bob = bobClient.room(room, { user: 'bob' })
    const annSeen = record(ann, ['message'])
    const bobSeen = record(bob, ['message'])
    await Promise.all([ann.ready, bob.ready])
    return { ann, bob, bobClient, annSeen, bobSeen }
  }

  /**
   * Wait until `seen` holds the message with body `barrier`, sent after
   * everything else: room events come in seq order, so a duplicate of an
   * earlier message would have arrived before it.
   */
  async function barrier (sender, seen) {
    const { seq } = await sender.send('barrier')
    await waitFor(() => named(seen, 'message').some((m) => m.seq === seq), 'the barrier message')
  }

  test('a send made offline is posted exactly once after the reconnect, and missed messages are caught up', async () => {
    const { ann, bob, bobClient, annSeen, bobSeen } = await annAndBob('offline')
    await ann.send('before the cut')
    await waitFor(() => bob.lastSeq === 1, 'bob has message 1')

    proxy.cut()
    await untilStatus(bobClient, 'disconnected')
    await ann.send('missed 1')
    await ann.send('missed 2')
    const offlineSend = bob.send('written offline')
    await proxy.restore()

    const posted = await offlineSend
    assert.equal(posted.seq, 4)
    await barrier(ann, bobSeen)
    assert.deepEqual(named(bobSeen, 'message').map((m) => m.body),
      ['before the cut', 'missed 1', 'missed 2', 'written offline', 'barrier'])
    await barrier(bob, annSeen)
    assert.equal(named(annSeen, 'message').filter((m) => m.body === 'written offline').length, 1)
    const { messages } = await ann.history({ after: 0 })
    assert.equal(messages.filter((m) => m.body === 'written offline').length, 1)
  })

  test('a send whose answer was lost is resent with its client_id and posted once', async () => {
    const { ann, bob, bobClient, annSeen, bobSeen } = await annAndBob('lost-answer')
    proxy.dropReplies()
    const sending = bob.send('answer lost', null, { clientId: 'bob-1' })
    // Committed (ann sees it) while bob hears nothing back.
    await waitFor(() => named(annSeen, 'message').some((m) => m.client_id === 'bob-1'), 'the message posted')
    proxy.cut()
    await untilStatus(bobClient, 'disconnected')
    await proxy.restore()

    const posted = await sending
    assert.equal(posted.message.client_id, 'bob-1')
    assert.equal(posted.seq, named(annSeen, 'message').find((m) => m.client_id === 'bob-1').seq)
    await barrier(ann, bobSeen)
    // bob never got the live event: the catch-up emitted it, once.
    assert.deepEqual(named(bobSeen, 'message').map((m) => m.client_id === 'bob-1' ? 'bob-1' : m.body),
      ['bob-1', 'barrier'])
    await barrier(bob, annSeen)
    assert.equal(named(annSeen, 'message').filter((m) => m.client_id === 'bob-1').length, 1)
  })

  test('sends queued offline beyond the rate limit are all posted, once each and in order', async () => {
    const { ann, bob, bobClient, annSeen } = await annAndBob('burst')
    proxy.cut()
    await untilStatus(bobClient, 'disconnected')
    const bodies = Array.from({ length: 25 }, (_, i) => `queued ${i}`)
    const sends = bodies.map((body) => bob.send(body))
    await proxy.restore()

    const results = await Promise.all(sends)
    assert.deepEqual(results.map((r) => r.message.body), bodies)
    const seqs = results.map((r) => r.seq)
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b))
    await waitFor(() => named(annSeen, 'message').length === 25, 'all 25 at ann')
    await barrier(bob, annSeen)
    assert.deepEqual(named(annSeen, 'message').map((m) => m.body), [...bodies, 'barrier'])
    assert.equal((await ann.history({ after: 0, limit: 100 })).messages.length, 26)
  })

  test('after a server crash, queued sends are posted once and everyone catches up', async () => {
    const ann = ctx.clients.make(ctx.server.wsUrl).room('crash', { user: 'ann' })
    const bobClient = ctx.clients.make(ctx.server.wsUrl)
    const bob = bobClient.room('crash', { user: 'bob' })
    const bobSeen = record(bob, ['message'])
    await Promise.all([ann.ready, bob.ready])
    await ann.send('before the crash')

    await ctx.server.kill()
    await untilStatus(bobClient, 'disconnected')
    const whileDown = ann.send('sent while the server was down')
    await ctx.server.start()

    assert.equal((await whileDown).seq, 2)
    await waitFor(() => named(bobSeen, 'message').length === 2, 'bob has both')
    assert.deepEqual(named(bobSeen, 'message').map((m) => m.body), ['before the crash', 'sent while the server was down'])
    const { messages } = await bob.history({ after: 0 })
    assert.deepEqual(messages.map((m) => m.body), ['before the crash', 'sent while the server was down'])
  })
})
