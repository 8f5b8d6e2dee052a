/**
 * The connection itself against a real server: status, token and query
 * parameters, reconnecting after a restart, close(), and a handshake that
 * never completes.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { describe, test } from 'node:test'
import * as Y from 'yjs'
import { record, recordingWebSocket, untilStatus, useServer, waitFor } from './helpers.js'

describe('the connection', () => {
  const ctx = useServer()

  test('status goes connecting, connected; params ride on the URL, the token in the first message', async () => {
    const urls = []
    const sent = []
    const RecordingWebSocket = recordingWebSocket(urls, sent)
    let tokenCalls = 0
    const client = ctx.clients.make(ctx.server.wsUrl, {
      WebSocket: RecordingWebSocket,
      token: async () => `token-${++tokenCalls}`,
      params: { device: 'laptop' }
    })
    const statuses = record(client, ['status'])
    await untilStatus(client, 'connected')
    assert.deepEqual(statuses.map(([, status]) => status), ['connected'])
    assert.equal(urls.length, 1)
    assert.equal(urls[0].pathname, '/ws')
    assert.equal(urls[0].searchParams.has('token'), false)
    assert.equal(urls[0].searchParams.get('device'), 'laptop')
    assert.equal(sent[0][0].op, 'auth')
    assert.equal(sent[0][0].token, 'token-1')
  })

  test('close() rejects pending requests with code closed and stops for good', async () => {
    const client = ctx.clients.make(ctx.server.wsUrl)
    const room = client.room('closing', { user: 'ann' })
    await room.ready
    const doc = client.doc('closing', new Y.Doc())
    await waitFor(() => doc.synced, 'synced')
    client.close()
    assert.equal(client.status, 'disconnected')
    await assert.rejects(room.send('too late'), (error) => error.code === 'closed')
    assert.throws(() => client.doc('other', new Y.Doc()), /closed/)
    assert.equal(doc.synced, false)
  })
})

describe('reconnecting', () => {
  const ctx = useServer({ perTest: true })

  test('after a restart the client reconnects with the same token, without calling the token function again', async () => {
    const urls = []
    const sent = []
    const RecordingWebSocket = recordingWebSocket(urls, sent)
    let tokenCalls = 0
    const client = ctx.clients.make(ctx.server.wsUrl, { WebSocket: RecordingWebSocket, token: () => `t${++tokenCalls}` })
    const statuses = record(client, ['status'])
    const closes = record(client, ['close'])
    await untilStatus(client, 'connected')
    await ctx.server.stop() // closes sockets with 1012
    await untilStatus(client, 'disconnected')
    await ctx.server.start()
    await waitFor(() => client.status === 'connected' && urls.length >= 2, 'reconnected')
    assert.equal(tokenCalls, 1)
    // Every socket that opened (not those tried while the server was down) began with the same token.
    const opened = sent.filter((messages) => messages.length > 0)
    assert.ok(opened.length >= 2)
    assert.ok(opened.every((messages) => messages[0].op === 'auth' && messages[0].token === 't1'))
    assert.deepEqual(closes[0][1], { code: 1012, reason: closes[0][1].reason, opened: true })
    const seen = statuses.map(([, status]) => status)
    assert.deepEqual(seen.slice(0, 2), ['connected', 'disconnected'])
    assert.equal(seen[seen.length - 1], 'connected')
  })

  test('a failing token function is reported and retried', async () => {
    let tokenCalls = 0
    const client = ctx.clients.make(ctx.server.wsUrl, {
      token: () => {
        if (++tokenCalls === 1) throw new Error('auth service down')
        return 'ok'
      },
      reconnect: { baseDelay: 10, maxDelay: 50 }
    })
    const errors = record(client, ['error'])
    await untilStatus(client, 'connected')
    assert.equal(tokenCalls, 2)
    assert.match(errors[0][1].message, /auth service down/)
  })

  test('a handshake that never completes is abandoned and retried', async () => {
    // A listener that accepts connections and never answers them.
    const accepted = []
    const silent = net.createServer((socket) => accepted.push(socket))
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve))
    try {
      const client = ctx.clients.make(`ws://127.0.0.1:${silent.address().port}/ws`, {
        connectTimeout: 100,
        reconnect: { baseDelay: 10, maxDelay: 50 }
      })
      await waitFor(() => accepted.length >= 3, 'three attempts')
      assert.notEqual(client.status, 'connected')
    } finally {
      for (const socket of accepted) socket.destroy()
      silent.close()
    }
  })
})
