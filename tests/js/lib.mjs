// Shared helpers for the interop scripts: stock y-websocket clients over `ws`,
// bounded waits, a seeded random source, and one JSON result line on stdout.

import { createHash } from 'node:crypto'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

export { Y }

// y-websocket message types (first varuint of a frame) and sync sub-types.
const MESSAGE_NAMES = { 0: 'sync', 1: 'awareness', 2: 'auth', 3: 'query_awareness' }
const SYNC_NAMES = { 0: 'step1', 1: 'step2', 2: 'update' }

/** Name a y-websocket frame by its first bytes, e.g. 'sync.step1' or 'awareness'. */
export function frameKind (data) {
  const bytes = new Uint8Array(data)
  const type = MESSAGE_NAMES[bytes[0]] ?? `type${bytes[0]}`
  return type === 'sync' ? `sync.${SYNC_NAMES[bytes[1]] ?? bytes[1]}` : type
}

function count (table, key) {
  table[key] = (table[key] ?? 0) + 1
}

/**
 * A `ws` WebSocket that counts frames per kind in both directions, so the
 * scripts can report what actually crossed the wire. The first few frames
 * after each open are kept in order as well.
 */
export function countingWebSocket (stats) {
  return class CountingWebSocket extends WebSocket {
    constructor (...args) {
      super(...args)
      const opening = []
      stats.connections.push(opening)
      this.addEventListener('message', (event) => {
        const kind = frameKind(event.data)
        count(stats.received, kind)
        if (opening.length < 8) opening.push(`<${kind}`)
      })
      this.addEventListener('close', (event) => {
        stats.closes.push({ code: event.code, reason: String(event.reason ?? '') })
      })
      this._opening = opening
    }

    send (data, ...rest) {
      const kind = frameKind(data)
      count(stats.sent, kind)
      if (this._opening.length < 8) this._opening.push(`>${kind}`)
      return super.send(data, ...rest)
    }
  }
}

export function newStats () {
  return { sent: {}, received: {}, closes: [], connections: [] }
}

/**
 * One stock client: its own Y.Doc and a WebsocketProvider with default
 * options except the ones a Node test needs. BroadcastChannel is disabled:
 * lib0 delivers it synchronously between providers of one process, which
 * would let clients sync without the server.
 */
export function createClient ({ url, doc, name, color, stats, params = {} }) {
  const ydoc = new Y.Doc()
  const provider = new WebsocketProvider(url, doc, ydoc, {
    connect: false,
    params,
    disableBc: true,
    maxBackoffTime: 500,
    WebSocketPolyfill: stats ? countingWebSocket(stats) : WebSocket
  })
  const client = {
    name,
    ydoc,
    provider,
    text: ydoc.getText('body'),
    meta: ydoc.getMap('meta'),
    items: ydoc.getArray('items'),
    // Close events of sockets the server closed (null event: closed by us).
    serverCloses: []
  }
  provider.on('connection-close', (event) => {
    if (event) client.serverCloses.push({ code: event.code, reason: String(event.reason ?? '') })
  })
  provider.awareness.setLocalStateField('user', { name, color })
  provider.connect()
  return client
}

/** Names (`user.name`) of every awareness state a client currently knows. */
export function peerNames (client) {
  const names = []
  for (const state of client.provider.awareness.getStates().values()) {
    if (state?.user?.name) names.push(state.user.name)
  }
  return names.sort()
}

/** Keep every `user.name` a client ever sees in awareness (states come and go). */
export function recordPeerNames (client) {
  const seen = new Set(peerNames(client))
  client.provider.awareness.on('change', () => {
    for (const name of peerNames(client)) seen.add(name)
  })
  return () => [...seen].sort()
}

/** The state vector as a plain object {clientID: clock}, keys sorted. */
export function stateVector (ydoc) {
  const sv = Y.decodeStateVector(Y.encodeStateVector(ydoc))
  return Object.fromEntries([...sv.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v]))
}

export function sha256 (text) {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/** JSON with object keys sorted at every level, for equality checks. */
export function canonical (value) {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
      : v)
}

/** What a client holds: the three shared types, a hash of the text, the state vector. */
export function content (client) {
  const text = client.text.toString()
  return {
    text,
    textSha256: sha256(text),
    meta: client.meta.toJSON(),
    items: client.items.toJSON(),
    stateVector: stateVector(client.ydoc)
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Poll `predicate` every 10 ms until it is true; throws after `timeoutMs`. */
export async function waitFor (predicate, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

export function waitSynced (clients, timeoutMs) {
  return waitFor(() => clients.every((c) => c.provider.synced), 'all clients synced', timeoutMs)
}

/** xorshift32: a small deterministic random source, values in [0, 1). */
export function randomSource (seed) {
  let x = (seed >>> 0) || 0x9e3779b9
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 4294967296
  }
}

export function randomInt (rand, n) {
  return Math.floor(rand() * n)
}

/**
 * Run a script body: parse `--name value` options (all strings), arm a hard
 * timeout, print one JSON line ({ok: true, ...result} or {ok: false, error})
 * and exit 0 on success, 1 on failure, 2 on the hard timeout.
 */
export async function run (script, options, body) {
  const { values } = parseArgs({
    options: { ...options, 'timeout-ms': { type: 'string', default: '30000' } },
    strict: true
  })
  const hardTimeout = Number(values['timeout-ms'])
  const started = Date.now()
  const finish = (code, result) => {
    process.stdout.write(JSON.stringify({ script, ...result, elapsedMs: Date.now() - started }) + '\n', () => process.exit(code))
  }
  const timer = setTimeout(() => finish(2, { ok: false, error: `hard timeout after ${hardTimeout} ms` }), hardTimeout)
  try {
    const result = await body(values)
    clearTimeout(timer)
    finish(0, { ok: true, ...result })
  } catch (error) {
    clearTimeout(timer)
    finish(1, { ok: false, error: String(error?.stack ?? error), ...(error?.details ?? {}) })
  }
}

/** Disconnect and destroy every provider (closes their sockets). */
export function closeAll (clients) {
  for (const c of clients) c.provider.destroy()
}
