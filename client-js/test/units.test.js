/**
 * The pieces that need no server: backoff, the token source, name checks,
 * the codec and the emitter.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CollabClient, CollabError } from '../index.js'
import { backoffDelay } from '../src/backoff.js'
import { decodeMessage, encodeMessage } from '../src/codec.js'
import { Emitter } from '../src/emitter.js'
import { checkActorType, checkName } from '../src/names.js'
import { TokenSource } from '../src/token.js'

test('backoff: full jitter between 0 and an exponential ceiling capped at maxDelay', () => {
  const bounds = { baseDelay: 250, maxDelay: 10_000 }
  const almostOne = () => 0.999999
  assert.equal(backoffDelay(0, bounds, () => 0), 0)
  assert.equal(backoffDelay(0, bounds, almostOne), 249)
  assert.equal(backoffDelay(1, bounds, almostOne), 499)
  assert.equal(backoffDelay(3, bounds, almostOne), 1999)
  assert.equal(backoffDelay(6, bounds, almostOne), 9999)
  assert.equal(backoffDelay(500, bounds, almostOne), 9999)
  for (let attempt = 0; attempt < 20; attempt++) {
    const delay = backoffDelay(attempt, bounds)
    assert.ok(delay >= 0 && delay < 10_000)
  }
})

test('token: none, or a fixed string', async () => {
  assert.equal(await new TokenSource(undefined).get(), null)
  assert.equal(await new TokenSource('secret').get(), 'secret')
  assert.throws(() => new TokenSource(42), TypeError)
})

test('token: a function is called once, and again only after invalidate() (a 4401 close)', async () => {
  let calls = 0
  const source = new TokenSource(async () => `t${++calls}`)
  assert.equal(await source.get(), 't1')
  assert.equal(await source.get(), 't1')
  assert.equal(calls, 1)
  source.invalidate()
  assert.equal(await source.get(), 't2')
  assert.equal(await source.get(), 't2')
  assert.equal(calls, 2)
})

test('token: a failing function is asked again next time; a non-string result is refused', async () => {
  let calls = 0
  const source = new TokenSource(() => {
    calls++
    if (calls === 1) throw new Error('auth service down')
    return 'fresh'
  })
  await assert.rejects(source.get(), /auth service down/)
  assert.equal(await source.get(), 'fresh')
  await assert.rejects(new TokenSource(() => 7).get(), TypeError)
})

test('names: the server rule is checked before anything is sent', () => {
  for (const good of ['notes', 'team/notes', 'a.b_c~d-e', 'x'.repeat(128)]) checkName(good, 'name')
  for (const bad of ['', 'x'.repeat(129), 'a b', '/a', 'a/', 'a//b', 'a/../b', '.', 'é', 7]) {
    assert.throws(() => checkName(bad, 'document name'), TypeError, String(bad))
  }
})

test('names: actor types follow the server\'s rule, hyphens included', () => {
  for (const good of ['room', 'tally', 'order-book', 'a_b-c9', 'x', 'x'.repeat(64)]) checkActorType(good)
  for (const bad of ['', 'Room', '9lives', '-x', '_x', 'a b', 'a:b', 'a.b', 'x'.repeat(65), null]) {
    assert.throws(() => checkActorType(bad), TypeError, String(bad))
  }
})

test('codec: msgpack maps with bytes; undefined fields are left out', () => {
  const bytes = encodeMessage({ id: 1, op: 'doc.update', update: new Uint8Array([1, 2]), sv: undefined })
  const decoded = decodeMessage(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))
  assert.deepEqual(decoded, { id: 1, op: 'doc.update', update: new Uint8Array([1, 2]) })
  // The protocol's own example bytes: {"id": 1, "op": "ping"}.
  assert.deepEqual([...encodeMessage({ id: 1, op: 'ping' })],
    [0x82, 0xa2, 0x69, 0x64, 0x01, 0xa2, 0x6f, 0x70, 0xa4, 0x70, 0x69, 0x6e, 0x67])
  for (const bad of ['{"id": 1}', new Uint8Array([0xc1]), encodeMessage([1, 2])]) {
    assert.throws(() => decodeMessage(bad), (error) => error instanceof CollabError && error.code === 'protocol')
  }
})

test('emitter: on/off/once, and a throwing listener does not stop the others', () => {
  const emitter = new Emitter()
  const seen = []
  const off = emitter.on('x', (value) => seen.push(['on', value]))
  emitter.once('x', (value) => seen.push(['once', value]))
  const offBug = emitter.on('x', () => { throw new Error('listener bug') })
  emitter.on('x', (value) => seen.push(['after', value]))
  // The error is rethrown out of band (like EventTarget); catch that task here.
  const reported = []
  const queueMicrotask = globalThis.queueMicrotask
  globalThis.queueMicrotask = (task) => {
    try { task() } catch (error) { reported.push(error.message) }
  }
  try {
    emitter.emit('x', 1)
  } finally {
    globalThis.queueMicrotask = queueMicrotask
  }
  off()
  offBug()
  emitter.emit('x', 2)
  assert.deepEqual(seen, [['on', 1], ['once', 1], ['after', 1], ['after', 2]])
  assert.deepEqual(reported, ['listener bug'])
  emitter.emit('error', new Error('nobody listens: dropped, not thrown'))
})

test('CollabError carries the code and message of a failed response', () => {
  const error = CollabError.fromResponse({ code: 'unknown_action', message: "room has no action 'x'" })
  assert.ok(error instanceof Error)
  assert.equal(error.name, 'CollabError')
  assert.equal(error.code, 'unknown_action')
  assert.equal(error.message, "room has no action 'x'")
})

test('a client needs a WebSocket class and a valid URL', () => {
  const saved = globalThis.WebSocket
  try {
    globalThis.WebSocket = undefined
    assert.throws(() => new CollabClient('ws://127.0.0.1:1/ws'), /no WebSocket implementation/)
  } finally {
    globalThis.WebSocket = saved
  }
  assert.throws(() => new CollabClient('not a url', { WebSocket: class {} }), TypeError)
  assert.throws(() => new CollabClient('http://127.0.0.1:1/ws', { WebSocket: class {} }), /ws:\/\/ or wss:\/\//)
  for (const heartbeat of [{ interval: 0 }, { interval: 500, timeout: 500 }, { timeout: -1 }]) {
    assert.throws(() => new CollabClient('ws://127.0.0.1:1/ws', { WebSocket: class {}, heartbeat }), /heartbeat/)
  }
})
