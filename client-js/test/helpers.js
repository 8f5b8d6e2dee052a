/**
 * Shared test helpers: bounded waits (never timing assertions), clients that
 * are closed after each test, and a TCP proxy that cuts one client off the
 * network while the server and the other clients carry on.
 */
import { createHmac } from 'node:crypto'
import net from 'node:net'
import { WebSocket } from 'ws'
import { CollabClient } from '../index.js'
import { decodeMessage } from '../src/codec.js'
import { after, afterEach, before, beforeEach } from 'node:test'
import { CollabServer, TIMEOUT_MS } from './server.js'

/** Poll `check` until it returns something truthy (returned); fail after TIMEOUT_MS. */
export async function waitFor (check, what = 'a condition') {
  const deadline = Date.now() + TIMEOUT_MS
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** The next `event` of `emitter` whose arguments pass `accept`; fails after TIMEOUT_MS. */
export function nextEvent (emitter, event, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`timed out waiting for '${event}'`))
    }, TIMEOUT_MS)
    const off = emitter.on(event, (...args) => {
      if (!accept(...args)) return
      clearTimeout(timer)
      off()
      resolve(args[0])
    })
  })
}

export function sleep (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Records every event of `emitter` named in `events`, as [event, data] pairs. */
export function record (emitter, events) {
  const seen = []
  for (const event of events) emitter.on(event, (data) => seen.push([event, data]))
  return seen
}

/**
 * Makes clients (with the ws package's WebSocket) and closes them all in
 * `closeAll()`, so a failing test leaves no socket or timer behind.
 */
export class Clients {
  constructor () {
    this.made = []
  }

  make (url, options = {}) {
    const client = new CollabClient(url, { WebSocket, ...options })
    this.made.push(client)
    return client
  }

  closeAll () {
    for (const client of this.made) client.close()
    this.made = []
  }
}

/** A TCP port on 127.0.0.1 that refuses connections: one that was just listened on and closed. */
export async function refusedPort () {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Wait until `client` (or a provider) reports `status`. */
export function untilStatus (target, status) {
  return waitFor(() => target.status === status, `status ${status}`)
}

/**
 * A TCP proxy to 127.0.0.1:`targetPort`. `cut()` breaks every connection
 * through it and refuses new ones (as a network outage looks to a client);
 * `restore()` accepts again on the same port. `dropReplies()` keeps
 * forwarding the client's bytes but silently drops the server's, so a request
 * is handled but its answer is lost.
 */
export class TcpProxy {
  constructor (targetPort) {
    this.targetPort = targetPort
    this.port = 0
    this.links = new Set()
    this.server = null
    this.replies = true
  }

  get wsUrl () {
    return `ws://127.0.0.1:${this.port}/ws`
  }

  async start () {
    this.replies = true
    this.server = net.createServer((client) => this._link(client))
    await new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.port, '127.0.0.1', resolve)
    })
    this.port = this.server.address().port
    return this
  }

  cut () {
    this.server?.close()
    this.server = null
    for (const socket of this.links) socket.destroy()
    this.links.clear()
  }

  restore () {
    return this.start()
  }

  dropReplies () {
    this.replies = false
  }

  /** Undo dropReplies(): the server's bytes go through again. */
  passReplies () {
    this.replies = true
  }

  _link (client) {
    const upstream = net.connect(this.targetPort, '127.0.0.1')
    this.links.add(client)
    this.links.add(upstream)
    client.on('data', (data) => upstream.write(data))
    upstream.on('data', (data) => { if (this.replies) client.write(data) })
    for (const [socket, other] of [[client, upstream], [upstream, client]]) {
      socket.on('error', () => other.destroy())
      socket.on('close', () => {
        this.links.delete(socket)
        other.destroy()
      })
    }
  }
}

/**
 * Inside a `describe`: a real server for the block (or, with `perTest`, a fresh one
 * for each test: for tests that stop or kill it), and the clients each test makes
 * with `ctx.clients.make(...)`, closed after it. Returns `ctx` ({server, clients}).
 */
export function useServer ({ perTest = false, ...serverOptions } = {}) {
  const ctx = { server: null, clients: null }
  const startServer = async () => { ctx.server = await new CollabServer(serverOptions).start() }
  if (perTest) {
    beforeEach(startServer)
  } else {
    before(startServer)
    after(() => ctx.server.dispose())
  }
  beforeEach(() => { ctx.clients = new Clients() })
  afterEach(async () => {
    ctx.clients.closeAll()
    if (perTest) await ctx.server.dispose()
  })
  return ctx
}

/**
 * A WebSocket class that records the URL of every socket it opens into `urls`
 * and, given `sent`, pushes one array per socket onto it holding the decoded
 * messages the client sends on that socket, in order.
 */
export function recordingWebSocket (urls, sent = null) {
  return class RecordingWebSocket extends WebSocket {
    constructor (url, ...rest) {
      super(url, ...rest)
      urls.push(new URL(url))
      this._sentMessages = []
      sent?.push(this._sentMessages)
    }

    send (data, ...rest) {
      this._sentMessages.push(decodeMessage(data))
      return super.send(data, ...rest)
    }
  }
}

/**
 * An HS256 JWT signed with `secret` for `user`, granting everything (documents,
 * rooms, actors), valid for `ttl` seconds from `now` (Unix seconds).
 */
export function signToken (secret, user, { ttl = 3600, now = Date.now() / 1000 } = {}) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const grants = { '*': 'rw' }
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({
    sub: user, iat: Math.floor(now), exp: Math.floor(now + ttl), docs: grants, rooms: grants, actors: grants
  })}`
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`
}
