/**
 * ActorHandle: calls to one actor (type and key) and, when connected, its
 * events (docs/protocol.md, section 6).
 *
 * A connecting handle sends `actor.connect` as soon as a socket is open, and
 * again on every new socket. Calls wait in the handle's outbox until the
 * connection is made, because the server attributes a call to the connection
 * (a room's author, say) only once `actor.connect` has been answered. Calls
 * made offline are sent after the reconnect; calls in flight when the socket
 * drops reject with code 'disconnected', since whether they ran is unknown.
 */
import { Emitter } from './emitter.js'
import { TRANSIENT_CODES } from './errors.js'
import { checkActorType, checkName } from './names.js'
import { closedError, Outbox } from './outbox.js'

export class ActorHandle extends Emitter {
  /**
   * Made by CollabClient#actor (or #room).
   * @param {import('./client.js').CollabClient} client
   * @param {string} type
   * @param {string} key
   * @param {{params?: object, connect?: boolean}} [options]
   */
  constructor (client, type, key, { params = {}, connect = true } = {}) {
    super()
    checkActorType(type)
    checkName(key, 'actor key')
    if (params === null || typeof params !== 'object' || Array.isArray(params)) {
      throw new TypeError('params must be a plain object')
    }
    this.client = client
    this.type = type
    this.key = key
    this.params = params
    this._connects = connect
    /** True while the current socket is connected to the actor. */
    this.connected = false

    this._outbox = new Outbox(client)
    this._connectRun = 0
    this._connectFailures = 0
    this._retryTimer = null
    this._closed = false
    let settleReady
    /**
     * Resolves once the first connection is made (at once for `connect:
     * false`); rejects if the actor refuses it (e.g. 'invalid_user',
     * 'unknown_actor_type'), after which the handle is closed.
     */
    this.ready = new Promise((resolve, reject) => { settleReady = { resolve, reject } })
    this.ready.catch(() => {}) // nobody has to await it; a refusal is also an 'error' on the client
    this._settleReady = settleReady
  }

  /** Run `action` with positional `args`; resolves with its result, rejects with a CollabError. */
  call (action, ...args) {
    return this.callWith(action, { args })
  }

  /** Run `action` with positional `args` and named `kwargs`. */
  callWith (action, { args = [], kwargs } = {}) {
    if (typeof action !== 'string' || action.length === 0) {
      return Promise.reject(new TypeError('action must be a non-empty string'))
    }
    return this._outbox.request({
      op: 'actor.call', actor: this.type, key: this.key, action, args, kwargs
    })
  }

  /** Append `message` to the actor's durable queue `queue`; resolves {seq} once committed. */
  enqueue (queue, message) {
    return this._outbox.request({ op: 'actor.queue', actor: this.type, key: this.key, queue, message })
  }

  /**
   * End the connection (a handle made with `connect: false` just closes).
   * Waiting calls reject with code 'closed'; calls in flight still get their answers.
   */
  async disconnect () {
    if (this._closed) return
    const wasConnected = this.connected
    this._close(closedError(`${this.type} "${this.key}"`))
    if (wasConnected) await this._sendDisconnect()
  }

  // -- called by the client -----------------------------------------------------------

  _onConnected () {
    if (this._connects) {
      this._connect()
    } else {
      this._outbox.open()
      this._settleReady.resolve()
    }
  }

  _onDisconnected () {
    this._connectRun++
    this.connected = false
    this._outbox.close()
    clearTimeout(this._retryTimer)
    this._retryTimer = null
  }

  _onClientClosed () {
    this._close(closedError('the client'))
  }

  _receiveEvent (name, data) {
    this.emit(name, data)
  }

  /**
   * Runs after each connection is made and before waiting calls are sent
   * (Room catches up on missed messages here). May reject with
   * 'disconnected', in which case the next socket runs it again.
   */
  async _afterConnect () {}

  // -- connecting ----------------------------------------------------------------------

  async _connect () {
    const run = ++this._connectRun
    let error = null
    try {
      await this.client._request({ op: 'actor.connect', actor: this.type, key: this.key, params: this.params })
    } catch (caught) {
      // A connect that timed out on the server may have connected us after all.
      if (caught.code !== 'already_connected') error = caught
    }
    if (this._closed && error === null) {
      this._sendDisconnect() // disconnect() came while connecting
      return
    }
    if (run !== this._connectRun || this._closed) return
    if (error !== null) {
      if (error.code === 'disconnected' || error.code === 'closed') return // the next socket tries again
      if (TRANSIENT_CODES.has(error.code)) {
        this._retryConnectLater()
      } else {
        // Refused for good: waiting calls cannot succeed either.
        this.client.emit('error', error)
        this._close(error)
      }
      return
    }
    this._connectFailures = 0
    this.connected = true
    try {
      await this._afterConnect()
    } catch (caught) {
      if (run !== this._connectRun || this._closed) return
      if (caught.code === 'disconnected') return
      this.client.emit('error', caught)
    }
    if (run !== this._connectRun || this._closed) return
    this._outbox.open()
    this._settleReady.resolve()
  }

  _retryConnectLater () {
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null
      if (this.client._isOpen() && !this._closed) this._connect()
    }, this.client._retryDelay(this._connectFailures++))
  }

  _sendDisconnect () {
    return this.client._request({ op: 'actor.disconnect', actor: this.type, key: this.key })
      .then(() => {}, () => {
        // Not connected any more (the socket dropped): nothing left to end.
      })
  }

  _close (error) {
    this._closed = true
    this._connectRun++
    this.connected = false
    clearTimeout(this._retryTimer)
    this._outbox.dispose(error)
    this._settleReady.reject(error)
    this.client._forgetActor(this)
    this._removeAllListeners()
  }
}
