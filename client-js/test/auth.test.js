/**
 * Credentials against real servers that check them (COLLAB_SECRET, and an
 * application hook): the token goes in the socket's first message, out of the
 * URL, unless `tokenTransport: 'query'`; a refused token is reported as an
 * 'error' and a 'close' with the server's code, and a token function is asked
 * again after a 4401. Also a development-mode server given a token.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import * as Y from 'yjs'
import { nextEvent, record, recordingWebSocket, signToken, untilStatus, useServer, waitFor } from './helpers.js'

const SECRET = 'client-js-test-secret-long-enough-for-hs256'
/** test/../../tests/apps/session_auth.py: refuses the token 'key-banned' with forbidden. */
const HOOK = 'tests.apps.session_auth:authenticate'

/** Two clients' copies of `name` converge: an edit made by one reaches the other. */
async function editReachesOther (a, b, name) {
  const docA = new Y.Doc()
  const docB = new Y.Doc()
  const providerA = a.doc(name, docA)
  b.doc(name, docB)
  docA.getText('t').insert(0, 'hello')
  await waitFor(() => docB.getText('t').toString() === 'hello', 'the edit at the other client')
  await waitFor(() => providerA.unsyncedChanges === 0, 'the edit saved')
}

describe('a token in the auth message', () => {
  const ctx = useServer({ app: 'app:registry', env: { COLLAB_SECRET: SECRET, COLLAB_AUTH_HOOK: HOOK } })

  test('stays out of the socket URL, goes first, and the client works', async () => {
    const urls = []
    const sent = []
    const token = signToken(SECRET, 'ann')
    const client = ctx.clients.make(ctx.server.wsUrl, {
      WebSocket: recordingWebSocket(urls, sent),
      token,
      params: { device: 'laptop' }
    })
    const errors = record(client, ['error'])
    const tally = client.actor('tally', 'auth', { params: { name: 'ann' } })
    const other = ctx.clients.make(ctx.server.wsUrl, { token: signToken(SECRET, 'bob') })
    await editReachesOther(client, other, 'auth-doc')
    assert.deepEqual(await tally.call('add', 2), { count: 2, by: 'ann' })
    assert.equal(client.status, 'connected')

    assert.equal(urls.length, 1)
    assert.equal(urls[0].searchParams.has('token'), false)
    assert.equal(urls[0].searchParams.get('device'), 'laptop')
    assert.ok(!urls[0].href.includes(token))
    const [first, ...rest] = sent[0]
    assert.deepEqual(first, { id: first.id, op: 'auth', token })
    assert.ok(rest.length > 0 && rest.every((message) => message.op !== 'auth'))
    assert.deepEqual(errors, [])
  })

  test('an expired token: an unauthorized error, a 4401 close, never connected', async () => {
    const expired = signToken(SECRET, 'eve', { ttl: 60, now: Date.now() / 1000 - 3600 })
    const client = ctx.clients.make(ctx.server.wsUrl, { token: expired, reconnect: { baseDelay: 50, maxDelay: 200 } })
    const statuses = record(client, ['status'])
    client.doc('auth-expired', new Y.Doc())
    const [error, close] = await Promise.all([nextEvent(client, 'error'), nextEvent(client, 'close')])
    assert.equal(error.name, 'CollabError')
    assert.equal(error.code, 'unauthorized')
    assert.match(error.message, /token expired/)
    assert.equal(close.code, 4401)
    assert.equal(close.opened, true)
    // It keeps trying (with backoff) and keeps being refused.
    assert.equal((await nextEvent(client, 'close')).code, 4401)
    assert.ok(statuses.every(([, status]) => status !== 'connected'))
  })

  test('a token function is asked again after a refusal, and the new token gets in', async () => {
    const tokens = [signToken(SECRET, 'eve', { ttl: 60, now: Date.now() / 1000 - 3600 }), signToken(SECRET, 'ann')]
    let tokenCalls = 0
    const client = ctx.clients.make(ctx.server.wsUrl, {
      token: async () => tokens[Math.min(tokenCalls++, 1)],
      reconnect: { baseDelay: 10, maxDelay: 50 }
    })
    const seen = record(client, ['error', 'close'])
    const tally = client.actor('tally', 'auth-again', { params: { name: 'ann' } })
    assert.deepEqual(await tally.call('add', 1), { count: 1, by: 'ann' })
    assert.equal(tokenCalls, 2)
    assert.deepEqual(seen.map(([event, data]) => [event, data.code]), [['error', 'unauthorized'], ['close', 4401]])
    await untilStatus(client, 'connected')
  })

  test("the application hook's refusal: a forbidden error and a 4403 close", async () => {
    const client = ctx.clients.make(ctx.server.wsUrl, { token: 'key-banned', reconnect: { baseDelay: 50, maxDelay: 200 } })
    const [error, close] = await Promise.all([nextEvent(client, 'error'), nextEvent(client, 'close')])
    assert.equal(error.code, 'forbidden')
    assert.equal(error.message, 'this key is banned')
    assert.equal(close.code, 4403)
  })

  test("tokenTransport 'query' puts the token in the URL and sends no auth message", async () => {
    const urls = []
    const sent = []
    const token = signToken(SECRET, 'ann')
    const client = ctx.clients.make(ctx.server.wsUrl, {
      WebSocket: recordingWebSocket(urls, sent),
      token,
      tokenTransport: 'query'
    })
    const other = ctx.clients.make(ctx.server.wsUrl, { token: signToken(SECRET, 'bob') })
    await editReachesOther(client, other, 'auth-query')
    assert.equal(await client.actor('tally', 'auth-query', { params: { name: 'ann' } }).call('count'), 0)
    assert.equal(urls[0].searchParams.get('token'), token)
    assert.ok(sent[0].length > 0 && sent[0].every((message) => message.op !== 'auth'))
  })

  test("tokenTransport 'query' with a refused token: the upgrade fails, the socket never opened", async () => {
    const client = ctx.clients.make(ctx.server.wsUrl, { token: 'not-a-jwt', tokenTransport: 'query' })
    const close = await nextEvent(client, 'close')
    assert.equal(close.opened, false)
    assert.notEqual(client.status, 'connected')
  })

  test('tokenTransport must be message or query', () => {
    assert.throws(() => ctx.clients.make(ctx.server.wsUrl, { tokenTransport: 'header' }), /tokenTransport/)
  })
})

describe('a development-mode server', () => {
  const ctx = useServer({ app: 'app:registry' })

  test('accepts the auth message of a client with a token, and the client works', async () => {
    const sent = []
    const client = ctx.clients.make(ctx.server.wsUrl, { WebSocket: recordingWebSocket([], sent), token: 'anything' })
    const errors = record(client, ['error', 'close'])
    const other = ctx.clients.make(ctx.server.wsUrl)
    await editReachesOther(client, other, 'dev-token')
    assert.deepEqual(await client.actor('tally', 'dev', { params: { name: 'ann' } }).call('add', 1), { count: 1, by: 'ann' })
    assert.equal(sent[0][0].op, 'auth')
    assert.deepEqual(errors, [])
  })

  test("close events: the server's code and reason, and the client's own close", async () => {
    const client = ctx.clients.make(ctx.server.wsUrl, { token: 'anything' })
    await untilStatus(client, 'connected')
    const closes = record(client, ['close'])
    client.close()
    assert.deepEqual(closes, [['close', { code: 1000, reason: 'client closed', opened: true }]])
  })
})
