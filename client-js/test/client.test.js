/**
 * The connection itself against a real server: status, token and query
 * parameters, reconnecting after a restart, close(), a handshake that never
 * completes, refused connections (with and without a close event after the
 * error), and the heartbeat noticing a socket gone silent.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import net from 'node:net'
import { dirname, join } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import { CollabClient } from '../index.js'
import {
  nextEvent, record, recordingWebSocket, refusedPort, TcpProxy, untilStatus, useServer, waitFor
} from './helpers.js'
import { TIMEOUT_MS } from './server.js'

const HERE = dirname(fileURLToPath(import.meta.url))
/** Refused attempts each test waits for. */
const ATTEMPTS = 6
/**
 * The longest gap allowed between two refused attempts: the backoff's
 * ceiling in these tests is 100 ms, so this leaves a loaded machine 15 times
 * that, and is still far below the 60 s connectTimeout the clients get.
 */
const MAX_RETRY_GAP_MS = 1500

/** Milliseconds between consecutive `at` times. */
function gaps (times) {
  return times.slice(1).map((at, i) => at - times[i])
}

/** The ping requests among the messages one socket sent. */
function pings (messages) {
  return messages.filter((message) => message.op === 'ping').length
}

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

describe('refused connections', () => {
  test("Node's built-in WebSocket (error, no close) is retried at backoff pace, not after connectTimeout", async () => {
    const port = await refusedPort()
    // Node 20 and 21 have the built-in WebSocket behind a flag; later ones by default.
    const flags = typeof globalThis.WebSocket === 'function' ? [] : ['--experimental-websocket']
    const child = spawn(process.execPath, [...flags, join(HERE, 'fixtures', 'refused.mjs'),
      `ws://127.0.0.1:${port}/ws`, String(ATTEMPTS)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => { stdout += chunk })
    child.stderr.on('data', (chunk) => { stderr += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS)
    const [code, signal] = await new Promise((resolve) => child.on('exit', (...args) => resolve(args)))
    clearTimeout(timer)
    const closes = stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))
    assert.equal(closes.length, ATTEMPTS, `exit ${code} ${signal}; stdout:\n${stdout}\nstderr:\n${stderr}`)
    assert.equal(code, 0, stderr)
    assert.ok(closes.every((info) => info.code === 1006 && info.opened === false), stdout)
    const slowest = Math.max(...gaps(closes.map((info) => info.at)))
    assert.ok(slowest < MAX_RETRY_GAP_MS, `retries ${slowest} ms apart`)
  })

  test('with the ws package (error, then close) each refused attempt is one failure, reported once', async () => {
    const port = await refusedPort()
    const urls = []
    const client = new CollabClient(`ws://127.0.0.1:${port}/ws`, {
      WebSocket: recordingWebSocket(urls),
      connectTimeout: 60_000,
      reconnect: { baseDelay: 20, maxDelay: 100 }
    })
    const closes = []
    client.on('close', (info) => closes.push({ at: Date.now(), ...info }))
    try {
      await waitFor(() => closes.length >= ATTEMPTS, `${ATTEMPTS} refused attempts`)
    } finally {
      client.close()
    }
    // One close event per socket (the last socket may have been cut short by close()).
    assert.ok(urls.length - closes.length <= 1, `${urls.length} sockets, ${closes.length} closes`)
    const slowest = Math.max(...gaps(closes.slice(0, ATTEMPTS).map((info) => info.at)))
    assert.ok(slowest < MAX_RETRY_GAP_MS, `retries ${slowest} ms apart`)
  })
})

describe('the heartbeat', () => {
  const ctx = useServer()
  // A ping gets a whole second to come back, plenty on a loaded machine.
  const heartbeat = { interval: 200, timeout: 1200 }

  test('an idle socket pings and stays up; one gone silent is dropped within the timeout and reconnected', async () => {
    const proxy = await new TcpProxy(ctx.server.port).start()
    try {
      const urls = []
      const sent = []
      const client = ctx.clients.make(proxy.wsUrl, {
        WebSocket: recordingWebSocket(urls, sent),
        heartbeat,
        reconnect: { baseDelay: 10, maxDelay: 50 }
      })
      const closes = record(client, ['close'])
      await untilStatus(client, 'connected')
      // Idle: the pings are answered, so the socket lives on.
      await waitFor(() => pings(sent[0]) >= 3, 'three pings')
      assert.deepEqual(closes, [])
      assert.equal(urls.length, 1)

      // The server goes silent without closing anything (as a hung process or a
      // dead network path looks): the client must notice on its own.
      const silentSince = Date.now()
      proxy.dropReplies()
      const info = await nextEvent(client, 'close')
      const noticedAfter = Date.now() - silentSince
      assert.deepEqual(info, { code: 1006, reason: 'heartbeat timeout', opened: true })
      assert.ok(noticedAfter < heartbeat.timeout + MAX_RETRY_GAP_MS, `noticed after ${noticedAfter} ms`)

      proxy.passReplies()
      await waitFor(() => client.status === 'connected' && urls.length >= 2, 'reconnected')
    } finally {
      proxy.cut()
    }
  })
})
