/**
 * Room: a chat room, the built-in `room` actor (docs/protocol.md, section 7).
 *
 * Beyond a plain actor handle it keeps the message stream whole across
 * reconnects: 'message' is emitted once per message, in seq order, including
 * the ones sent while this client was away (fetched with `history` after each
 * reconnect); and send() survives disconnects, resending with the same
 * client_id, which the room deduplicates, so a message is posted exactly once.
 */
import { uuidv4 } from 'lib0/random'
import { ActorHandle } from './actor.js'

/** Messages per history request when catching up (the server's maximum). */
const CATCH_UP_PAGE = 200

export class Room extends ActorHandle {
  /**
   * Made by CollabClient#room.
   * @param {import('./client.js').CollabClient} client
   * @param {string} name
   * @param {{user: string}} options
   */
  constructor (client, name, { user } = {}) {
    if (typeof user !== 'string' || user.length === 0) {
      throw new TypeError('client.room(name, { user }) needs the user id as a non-empty string')
    }
    super(client, 'room', name, { params: { user } })
    this.user = user
    /**
     * The highest seq emitted as 'message' (or, before any, the room's newest
     * seq when this handle first connected): where the next catch-up starts.
     */
    this.lastSeq = 0
    this._positionKnown = false
    /** While catching up, live 'message' events wait here so the order stays by seq. */
    this._held = null
  }

  get name () {
    return this.key
  }

  /**
   * Post a message; resolves {seq, message} once it is committed. Made
   * offline, it is sent after the reconnect; interrupted by a disconnect, it
   * is sent again with the same client id (posted once either way).
   * Pass `clientId` to choose the id yourself (to resend from a stored outbox).
   */
  send (body, meta = null, { clientId = uuidv4() } = {}) {
    if (typeof body !== 'string') return Promise.reject(new TypeError('body must be a string'))
    return this._outbox.request({
      op: 'actor.call', actor: this.type, key: this.key, action: 'send', args: [clientId, body, meta]
    }, { resend: true })
  }

  /** Change the body of one of your messages; resolves {message}. */
  edit (seq, body) {
    return this.call('edit', seq, body)
  }

  /** Delete one of your messages (a tombstone keeps its seq); resolves {message}. */
  delete (seq) {
    return this.call('delete', seq)
  }

  /** Add (or with add false, remove) your `emoji` reaction; resolves {message}. */
  react (seq, emoji, add = true) {
    return this.call('react', seq, emoji, add)
  }

  /**
   * A page of messages in ascending seq: {messages, has_more}. With `before`
   * (or nothing) the newest `limit` below it; with only `after` the oldest above it.
   */
  history ({ before, after, limit } = {}) {
    return this.callWith('history', { kwargs: { before, after, limit } })
  }

  /** Show (or hide) that this user is typing; it expires on the server after 5 s. */
  typing (active = true) {
    return this.call('typing', active)
  }

  /** Mark messages up to `seq` read; resolves {user, seq}. */
  read (seq) {
    return this.call('read', seq)
  }

  /** Resolves {count, last_read, last_seq}. */
  unread () {
    return this.call('unread')
  }

  /** Resolves {users: [{user, devices}], typing: [user]}. */
  presence () {
    return this.call('presence')
  }

  /** Resolves {read: {user: seq}}. */
  receipts () {
    return this.call('receipts')
  }

  /** Leave the room (ends this connection; the others see this user go offline if it was the last device). */
  leave () {
    return this.disconnect()
  }

  // -- the message stream --------------------------------------------------------------

  _receiveEvent (name, data) {
    if (name !== 'message') {
      this.emit(name, data)
    } else if (this._held !== null) {
      this._held.push(data)
    } else {
      this._emitMessage(data)
    }
  }

  /**
   * After each connection: the first time, learn where the room is (its newest
   * seq) so later catch-ups start there; after a reconnect, emit every message
   * posted since lastSeq. Live messages that arrive meanwhile are held, then
   * emitted unless the catch-up already did.
   */
  async _afterConnect () {
    this._held = []
    const caughtUp = new Set()
    try {
      if (!this._positionKnown) {
        const { messages } = await this._historyNow({ limit: 1 })
        if (messages.length > 0) this.lastSeq = Math.max(this.lastSeq, messages[messages.length - 1].seq)
        this._positionKnown = true
      } else {
        let after = this.lastSeq
        for (;;) {
          const { messages, has_more: hasMore } = await this._historyNow({ after, limit: CATCH_UP_PAGE })
          for (const message of messages) {
            caughtUp.add(message.seq)
            this._emitMessage(message)
          }
          if (!hasMore || messages.length === 0) break
          after = messages[messages.length - 1].seq
        }
      }
    } catch (error) {
      // Emitting the held messages now would skip the ones the catch-up did
      // not reach; the next catch-up (from lastSeq) gets them all.
      this._held = null
      throw error
    }
    const held = this._held
    this._held = null
    for (const message of held) {
      if (!caughtUp.has(message.seq)) this._emitMessage(message)
    }
  }

  /** history() on the current socket, before the outbox opens. */
  _historyNow (kwargs) {
    return this.client._request({
      op: 'actor.call', actor: this.type, key: this.key, action: 'history', kwargs
    })
  }

  _emitMessage (message) {
    if (message.seq > this.lastSeq) this.lastSeq = message.seq
    this.emit('message', message)
  }
}
