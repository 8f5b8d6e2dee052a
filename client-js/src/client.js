/**
 * CollabClient: one WebSocket to collab's `/ws`, shared by every document
 * provider, room and actor handle made from it. It owns the connection
 * (token, reconnect with backoff), request ids and their answers, and routes
 * events to their targets; the targets own what must happen on each new socket
 * (subscribe, connect, catch up).
 *
 * Credentials go in the socket's first message (`{"op": "auth", "token"}`,
 * docs/protocol.md section 1), pipelined with whatever the targets send
 * next, or in the `token` query parameter (`tokenTransport: 'query'`).
 *
 * A target is an object with `_onConnected()` (a socket opened),
 * `_onDisconnected()` (it dropped) and `_onClientClosed()` (the client is
 * closed for good): DocProvider, ActorHandle and Room.
 */
import { backoffDelay } from './backoff.js'
import { decodeMessage, encodeMessage } from './codec.js'
import { ActorHandle } from './actor.js'
import { DocProvider } from './doc.js'
import { CollabError, TRANSIENT_CODES } from './errors.js'
import { Emitter } from './emitter.js'
import { checkName } from './names.js'
import { closedError, Outbox } from './outbox.js'
import { Room } from './room.js'
import { TokenSource } from './token.js'

/** The server refused the token: get a fresh one before reconnecting. */
const CLOSE_UNAUTHORIZED = 4401
/** Where the token goes: the socket's first message (out of URLs and logs) or the URL query. */
const TOKEN_TRANSPORTS = new Set(['message', 'query'])
/** Error codes answering a refused auth message; the server closes the socket after them. */
const AUTH_REFUSALS = new Set(['unauthorized', 'forbidden'])
const SOCKET_OPEN = 1
/** The close code sent on a socket given up by the heartbeat (4000-4999: the application's own). */
const CLOSE_HEARTBEAT = 4000
/**
 * Heartbeat defaults, in ms. Silence for `interval` sends a `ping` request;
 * silence for `timeout` (the ping unanswered for `timeout - interval`) gives
 * the socket up as dead and reconnects. The server pings at the WebSocket
 * level every 20 s (COLLAB_PING_INTERVAL), but browsers answer those without
 * telling the page, so the client has to ask itself: 15 s keeps an idle
 * socket quiet (one small frame each way), 30 s leaves a ping 15 s to come
 * back from a slow server or network before the socket is given up.
 */
const HEARTBEAT_INTERVAL = 15_000
const HEARTBEAT_TIMEOUT = 30_000

export class CollabClient extends Emitter {
  /**
   * @param {string | URL} url the server's native endpoint, e.g. 'ws://127.0.0.1:1234/ws'
   * @param {object} [options]
   * @param {string | (() => string | Promise<string>)} [options.token] the credentials, sent as `tokenTransport` says
   * @param {'message' | 'query'} [options.tokenTransport] 'message' (the default): in an auth
   *   message, the socket's first frame; 'query': as the `token` query parameter of the socket URL
   * @param {typeof WebSocket} [options.WebSocket] a WebSocket class (in Node: the `ws` package's)
   * @param {Record<string, string>} [options.params] more query parameters for the socket URL
   * @param {number} [options.connectTimeout] ms a socket may take to open (and be accepted) before it is abandoned
   * @param {{baseDelay?: number, maxDelay?: number}} [options.reconnect] backoff bounds in ms
   * @param {{interval?: number, timeout?: number} | false} [options.heartbeat] ms of silence
   *   before a ping is sent, and before the socket is given up as dead; false: no heartbeat
   */
  constructor (url, {
    token,
    tokenTransport = 'message',
    WebSocket = globalThis.WebSocket,
    params = {},
    connectTimeout = 10_000,
    reconnect: { baseDelay = 250, maxDelay = 10_000 } = {},
    heartbeat = {}
  } = {}) {
    super()
    if (typeof WebSocket !== 'function') {
      throw new TypeError('no WebSocket implementation: pass one as the WebSocket option ' +
        "(in Node: import { WebSocket } from 'ws')")
    }
    const parsed = new URL(url)
    if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
      throw new TypeError(`the server URL must start with ws:// or wss:// (got ${parsed.href})`)
    }
    if (!TOKEN_TRANSPORTS.has(tokenTransport)) {
      throw new TypeError(`tokenTransport must be 'message' or 'query' (got ${String(tokenTransport)})`)
    }
    this.url = parsed.href
    this._tokenTransport = tokenTransport
    this._WebSocket = WebSocket
    this._params = { ...params }
    this._token = new TokenSource(token)
    this._connectTimeout = connectTimeout
    this._backoff = { baseDelay, maxDelay }
    this._heartbeat = heartbeatOptions(heartbeat)

    /** @type {'connecting' | 'connected' | 'disconnected'} */
    this.status = 'disconnected'
    this._socket = null
    /** The current socket has opened: requests may be sent on it (right behind its auth message). */
    this._socketOpened = false
    this._closed = false
    /** Consecutive connections that ended without the server answering anything. */
    this._failedAttempts = 0
    this._reconnectTimer = null
    this._connectTimer = null
    this._heartbeatTimer = null
    /** When the current socket last received a frame (Date.now()), and last sent a ping. */
    this._lastHeard = 0
    this._lastPing = 0

    this._nextId = 1
    /** Requests sent on the current socket and not answered yet, by id (in send order). */
    this._inFlight = new Map()
    /** @type {Map<string, DocProvider>} */
    this._docs = new Map()
    /** @type {Map<string, ActorHandle>} by actorId(type, key) */
    this._actors = new Map()

    this._connect()
  }

  // -- the public API --------------------------------------------------------------

  /**
   * Share the Y.Doc `ydoc` as the server document `name`; returns its provider.
   * One provider per name per client: destroy it before opening the name again.
   */
  doc (name, ydoc) {
    this._checkUsable()
    checkName(name, 'document name')
    if (this._docs.has(name)) {
      throw new Error(`document "${name}" is already open on this client; destroy its provider first`)
    }
    const provider = new DocProvider(this, name, ydoc)
    this._docs.set(name, provider)
    if (this._isOpen()) provider._onConnected()
    return provider
  }

  /** Join the chat room `name` as `user` (connects the built-in `room` actor). */
  room (name, { user } = {}) {
    return this._addActor(new Room(this, name, { user }))
  }

  /**
   * A handle on the actor `type`/`key`. With `connect: true` (the default)
   * the socket connects to the actor at once, with `params`, and the handle
   * receives its events; calls wait for that connection. With `connect: false`
   * calls are made without a connection (no events).
   */
  actor (type, key, { params = {}, connect = true } = {}) {
    return this._addActor(new ActorHandle(this, type, key, { params, connect }))
  }

  /**
   * Close for good: destroy every provider, leave every room and actor,
   * reject every pending request with code 'closed', and stop reconnecting.
   */
  close () {
    if (this._closed) return
    this._closed = true
    clearTimeout(this._reconnectTimer)
    clearTimeout(this._connectTimer)
    this._stopHeartbeat()
    for (const target of [...this._docs.values(), ...this._actors.values()]) target._onClientClosed()
    this._docs.clear()
    this._actors.clear()
    this._failInFlight(closedError('the client'), { resend: false })
    const socket = this._socket
    const opened = this._socketOpened
    this._socket = null
    this._socketOpened = false
    if (socket !== null) {
      closeQuietly(socket, 1000, 'client closed')
      this.emit('close', { code: 1000, reason: 'client closed', opened })
    }
    this._setStatus('disconnected')
  }

  // -- for providers and handles ---------------------------------------------------

  /**
   * Whether requests can be sent now. True from the moment the socket opens,
   * before the server has answered its auth message: requests sent behind it
   * wait on the server until it is accepted (or go down with the socket).
   */
  _isOpen () {
    return this._socket !== null && this._socketOpened && this._socket.readyState === SOCKET_OPEN
  }

  /** Send a request on the current socket now; rejects with 'disconnected' when there is none. */
  _request (message) {
    if (this._closed) return Promise.reject(closedError('the client'))
    if (!this._isOpen()) {
      return Promise.reject(new CollabError('disconnected', 'not connected to the server'))
    }
    return new Promise((resolve, reject) => {
      this._transmit({ message, resend: false, resolve, reject }, null)
    })
  }

  /** Send a message that expects no answer (only failures are answered); dropped when offline. */
  _notify (message) {
    if (this._isOpen()) this._socket.send(encodeMessage(message))
  }

  /** Send one outbox entry (or a `_request`) on the open socket, under a fresh id. */
  _transmit (entry, outbox) {
    const id = this._nextId++
    this._inFlight.set(id, { entry, outbox })
    this._socket.send(encodeMessage({ id, ...entry.message }))
  }

  /** The delay before retry number `attempt` of anything (the client's backoff bounds). */
  _retryDelay (attempt) {
    return backoffDelay(attempt, this._backoff)
  }

  _forgetDoc (provider) {
    if (this._docs.get(provider.name) === provider) this._docs.delete(provider.name)
  }

  _forgetActor (handle) {
    const id = actorId(handle.type, handle.key)
    if (this._actors.get(id) === handle) this._actors.delete(id)
  }

  // -- the connection --------------------------------------------------------------

  async _connect () {
    this._reconnectTimer = null
    if (this._closed) return
    this._setStatus('connecting')
    let socket
    let token
    try {
      token = await this._token.get()
      if (this._closed) return
      socket = new this._WebSocket(this._socketUrl(this._tokenTransport === 'query' ? token : null))
    } catch (error) {
      // The token function failed, or the URL or WebSocket class did: report
      // it and try again later, like any other failed connection.
      this.emit('error', error)
      this._setStatus('disconnected')
      this._scheduleReconnect()
      return
    }
    socket.binaryType = 'arraybuffer'
    this._socket = socket
    this._socketOpened = false
    // A handshake (or an auth message's answer) can hang (a dead proxy, a lost
    // SYN): give up on it so the backoff loop carries on instead of staying
    // 'connecting' forever.
    this._connectTimer = setTimeout(() => {
      if (this._socket === socket && this.status === 'connecting') {
        this._abandonSocket({ code: 1006, reason: 'connect timeout' })
      }
    }, this._connectTimeout)
    const authToken = this._tokenTransport === 'message' ? token : null
    socket.onopen = () => {
      if (this._socket === socket) this._onSocketOpen(authToken)
    }
    socket.onmessage = (event) => {
      if (this._socket === socket) {
        this._lastHeard = Date.now()
        this._onFrame(event.data)
      }
    }
    socket.onclose = (event) => {
      if (this._socket === socket) this._onSocketClosed(event)
    }
    // An error ends the attempt at once. Some implementations fire no close
    // event after it (Node's built-in WebSocket on a refused connection), and
    // waiting for one would stall the backoff loop until connectTimeout. When
    // a close does follow, the check above ignores it: one failure, counted once.
    // (Handling 'error' also keeps the ws package from throwing it.)
    socket.onerror = () => {
      if (this._socket === socket) this._abandonSocket({ code: 1006, reason: 'connection error' })
    }
  }

  _socketUrl (token) {
    const url = new URL(this.url)
    for (const [name, value] of Object.entries(this._params)) url.searchParams.set(name, String(value))
    if (token !== null) url.searchParams.set('token', token)
    return url.href
  }

  /**
   * The socket opened. With `authToken`, its first frame is the auth message
   * and the client is 'connected' once the server accepts it; the targets'
   * subscribe/connect requests follow it at once (the server reads nothing
   * past the auth message until it is done, then takes them in order).
   */
  _onSocketOpen (authToken) {
    this._socketOpened = true
    this._lastHeard = Date.now()
    if (authToken === null) {
      this._onAdmitted()
    } else {
      const ignore = () => {}
      this._transmit({ message: { op: 'auth', token: authToken }, auth: true, resend: false, resolve: ignore, reject: ignore }, null)
    }
    for (const target of [...this._docs.values(), ...this._actors.values()]) target._onConnected()
  }

  /** The server let this socket in (or was not asked to: no token, or one in the URL). */
  _onAdmitted () {
    clearTimeout(this._connectTimer)
    this._setStatus('connected')
    this._scheduleHeartbeat()
  }

  // -- the heartbeat ---------------------------------------------------------------

  /**
   * Arm the heartbeat timer for the next thing due on the connected socket:
   * a ping once nothing was heard for `interval`; the end of the socket once
   * that ping has waited `timeout - interval` with still nothing heard. Any
   * frame received counts as heard (the ping's answer, any other answer, an
   * event); the timer reads `_lastHeard` when it fires, so receiving costs no
   * timer work. The socket is only given up after a ping went unanswered, so
   * a timer that fires late (a browser throttling a background tab) pings
   * instead of dropping a healthy socket.
   */
  _scheduleHeartbeat () {
    this._stopHeartbeat()
    if (this._heartbeat === null || this._socket === null) return
    const { interval, timeout } = this._heartbeat
    const due = this._pingUnanswered()
      ? this._lastPing + timeout - interval
      : this._lastHeard + interval
    this._heartbeatTimer = setTimeout(() => this._onHeartbeat(), Math.max(0, due - Date.now()))
  }

  _onHeartbeat () {
    this._heartbeatTimer = null
    const socket = this._socket
    if (socket === null || this.status !== 'connected') return
    const now = Date.now()
    const { interval, timeout } = this._heartbeat
    if (this._pingUnanswered()) {
      if (now - this._lastPing >= timeout - interval) {
        // Nothing came back: the network or the server is gone without a FIN
        // (a sleeping laptop, a dropped NAT entry, a hung process). The socket
        // cannot close cleanly, so drop it (ws: terminate) and reconnect.
        this._abandonSocket({ code: 1006, reason: 'heartbeat timeout' }, () => {
          if (typeof socket.terminate === 'function') socket.terminate()
          else closeQuietly(socket, CLOSE_HEARTBEAT, 'heartbeat timeout')
        })
        return
      }
    } else if (now - this._lastHeard >= interval) {
      this._lastPing = now
      this._request({ op: 'ping' }).catch(() => {}) // its answer is the point, not its result
    }
    this._scheduleHeartbeat()
  }

  /** A ping went out and nothing at all was heard since. */
  _pingUnanswered () {
    return this._lastPing > this._lastHeard
  }

  _stopHeartbeat () {
    clearTimeout(this._heartbeatTimer)
    this._heartbeatTimer = null
  }

  /**
   * The answer to the auth message. A refusal (`unauthorized`, or `forbidden`
   * from the server's hook) is reported as an 'error'; the server closes the
   * socket next (4401 / 4403), which invalidates the token and reconnects.
   */
  _onAuthAnswer (message) {
    const error = message.ok === true ? null : CollabError.fromResponse(message.error)
    // 'already_authenticated': the socket was let in already (by a cookie the
    // server's hook accepts, or an older server in development mode).
    if (error === null || error.code === 'already_authenticated') {
      this._failedAttempts = 0 // a server let us in: this connection works
      this._onAdmitted()
      return
    }
    this.emit('error', error)
    // The server closes a socket whose token it refused; after any other
    // answer (a server without auth messages) give up on this socket ourselves.
    if (!AUTH_REFUSALS.has(error.code) && this._socket !== null) {
      this._abandonSocket({ code: 1000, reason: 'auth message refused' },
        (socket) => closeQuietly(socket, 1000, 'auth message refused'))
    }
  }

  /**
   * Give up on the current socket: handle it as closed with `event`, then
   * `close` it. In that order, so that whatever closing it fires finds it
   * detached already (Node's built-in WebSocket fires 'error' from inside
   * close() on a socket still connecting) and it is counted once.
   */
  _abandonSocket (event, close = (socket) => closeQuietly(socket)) {
    const socket = this._socket
    this._onSocketClosed(event)
    close(socket)
  }

  _onSocketClosed (event) {
    clearTimeout(this._connectTimer)
    this._stopHeartbeat()
    const opened = this._socketOpened
    this._socket = null
    this._socketOpened = false
    this._failInFlight(new CollabError('disconnected',
      'the connection to the server was lost before the answer came'), { resend: true })
    for (const target of [...this._docs.values(), ...this._actors.values()]) target._onDisconnected()
    if (event.code === CLOSE_UNAUTHORIZED) this._token.invalidate()
    this.emit('close', { code: event.code, reason: String(event.reason ?? ''), opened })
    this._setStatus('disconnected')
    this._scheduleReconnect()
  }

  /**
   * Reconnect after a backoff delay. The attempt count resets whenever a
   * server answers a request, so the first retry after a working connection
   * dropped (a 1012 restart, a network blip) comes at once-ish, and only a
   * server that keeps failing is retried ever more slowly.
   */
  _scheduleReconnect () {
    if (this._closed || this._reconnectTimer !== null) return
    const delay = this._retryDelay(this._failedAttempts++)
    this._reconnectTimer = setTimeout(() => this._connect(), delay)
  }

  /**
   * The socket is gone: requests waiting for an answer get `error`, except
   * resendable ones (with `resend`), which go back to their outbox to be sent
   * again on the next socket.
   */
  _failInFlight (error, { resend }) {
    const inFlight = [...this._inFlight.values()]
    this._inFlight.clear()
    const requeued = new Map()
    for (const { entry, outbox } of inFlight) {
      if (resend && entry.resend && outbox !== null && !outbox.disposed) {
        if (!requeued.has(outbox)) requeued.set(outbox, [])
        requeued.get(outbox).push(entry)
      } else {
        entry.reject(error)
      }
    }
    for (const [outbox, entries] of requeued) outbox.requeue(entries)
  }

  _onFrame (data) {
    let message
    try {
      message = decodeMessage(data)
    } catch (error) {
      this.emit('error', error)
      return
    }
    if ('event' in message) {
      this._onEvent(message)
    } else if (message.id === null || message.id === undefined) {
      // A notification (e.g. doc.awareness) failed: nobody awaits it.
      this.emit('error', CollabError.fromResponse(message.error))
    } else {
      this._onResponse(message)
    }
  }

  _onResponse (message) {
    const pending = this._inFlight.get(message.id)
    if (pending === undefined) return
    this._inFlight.delete(message.id)
    const { entry, outbox } = pending
    if (entry.auth) {
      this._onAuthAnswer(message)
      return
    }
    this._failedAttempts = 0 // a server answered: this connection works
    if (message.ok === true) {
      entry.resolve(message.result)
      return
    }
    const error = CollabError.fromResponse(message.error)
    const retryable = error.code === 'rate_limited' || TRANSIENT_CODES.has(error.code)
    if (entry.resend && retryable && outbox !== null && !outbox.disposed) {
      outbox.retryLater([entry])
    } else {
      entry.reject(error)
    }
  }

  _onEvent (message) {
    switch (message.event) {
      case 'doc.update':
        this._docs.get(message.doc)?._receiveUpdate(message.update)
        break
      case 'doc.awareness':
        this._docs.get(message.doc)?._receiveAwareness(message.update)
        break
      case 'doc.deleted':
        this._docs.get(message.doc)?._receiveDeleted(message.epoch)
        break
      case 'actor.event':
        this._actors.get(actorId(message.actor, message.key))?._receiveEvent(message.name, message.data)
        break
      // Events this client does not know (from a newer server) are ignored.
    }
  }

  _setStatus (status) {
    if (this.status === status) return
    this.status = status
    this.emit('status', status)
  }

  _checkUsable () {
    if (this._closed) throw new Error('this CollabClient is closed; create a new one')
  }

  _addActor (handle) {
    this._checkUsable()
    const id = actorId(handle.type, handle.key)
    if (this._actors.has(id)) {
      throw new Error(`${handle.type} "${handle.key}" is already open on this client; ` +
        'disconnect its handle first')
    }
    this._actors.set(id, handle)
    if (this._isOpen()) handle._onConnected()
    return handle
  }
}

/**
 * The heartbeat's settings: `false` turns it off (null); otherwise both
 * delays in ms, `timeout` above `interval` so a ping can be answered.
 */
function heartbeatOptions (heartbeat) {
  if (heartbeat === false || heartbeat === null) return null
  const timeout = heartbeat.timeout ?? Math.max(HEARTBEAT_TIMEOUT, 2 * (heartbeat.interval ?? HEARTBEAT_INTERVAL))
  const interval = heartbeat.interval ?? Math.min(HEARTBEAT_INTERVAL, timeout / 2)
  if (!(interval > 0 && timeout > interval)) {
    throw new TypeError(`heartbeat needs 0 < interval < timeout (got ${interval} and ${timeout} ms)`)
  }
  return { interval, timeout }
}

/** One key per actor: types are lowercase names and keys cannot contain ':'. */
function actorId (type, key) {
  return `${type}:${key}`
}

/** Close `socket` if it is not closed already; errors from an odd state are irrelevant here. */
function closeQuietly (socket, code, reason) {
  try {
    socket.close(code, reason)
  } catch {
    // closing during the handshake can throw in some implementations
  }
}
