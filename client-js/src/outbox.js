/**
 * Requests for one target (an actor connection, or the client itself), held
 * until that target is ready to take them and sent in the order they were made.
 *
 * An outbox is open while its target is usable on the current socket: an actor
 * handle opens its outbox once `actor.connect` has been answered, because the
 * server attributes a call to the connection only after that. While it is
 * closed (offline, reconnecting) requests wait here. Requests marked
 * `resend` (room sends, which the server deduplicates by client_id) come back
 * here, in their original order, when the socket drops before their answer or
 * the server asks to retry later; all others are rejected then.
 */
import { CollabError } from './errors.js'

/** How long an outbox waits after the server answered 'rate_limited' or a passing outage. */
export const RETRY_PAUSE_MS = 1000

export class Outbox {
  /** @param {import('./client.js').CollabClient} client */
  constructor (client) {
    this._client = client
    /** @type {Array<{message: object, resend: boolean, order: number, resolve: Function, reject: Function}>} */
    this._waiting = []
    this._nextOrder = 0
    this._open = false
    this._pauseTimer = null
    /** @type {CollabError | null} once set, every request is rejected with it */
    this._disposedWith = null
  }

  get disposed () {
    return this._disposedWith !== null
  }

  /** Send `message` (a request without its id) when the target is ready; resolves with the result. */
  request (message, { resend = false } = {}) {
    if (this._disposedWith !== null) return Promise.reject(this._disposedWith)
    return new Promise((resolve, reject) => {
      this._waiting.push({ message, resend, order: this._nextOrder++, resolve, reject })
      this.flush()
    })
  }

  open () {
    this._open = true
    this.flush()
  }

  close () {
    this._open = false
  }

  flush () {
    while (this._open && this._pauseTimer === null && this._waiting.length > 0 && this._client._isOpen()) {
      this._client._transmit(this._waiting.shift(), this)
    }
  }

  /** Take back requests that must be sent again, keeping the order they were made in. */
  requeue (entries) {
    this._waiting.push(...entries)
    this._waiting.sort((a, b) => a.order - b.order)
  }

  /** Take back `entries` and send nothing for a while (the server asked us to slow down). */
  retryLater (entries) {
    this.requeue(entries)
    if (this._pauseTimer === null) {
      this._pauseTimer = setTimeout(() => {
        this._pauseTimer = null
        this.flush()
      }, RETRY_PAUSE_MS)
    }
  }

  /** Reject everything waiting, and every later request, with `error`. */
  dispose (error) {
    this._disposedWith = error
    this._open = false
    clearTimeout(this._pauseTimer)
    this._pauseTimer = null
    const waiting = this._waiting
    this._waiting = []
    for (const entry of waiting) entry.reject(error)
  }
}

/** An error for requests that cannot be sent any more because their target is gone. */
export function closedError (what) {
  return new CollabError('closed', `${what} was closed`)
}
