/**
 * DocProvider: keeps one Y.Doc in sync with a server document over the
 * client's socket, with a y-protocols Awareness for cursors and presence
 * (docs/protocol.md, section 5).
 *
 * On every new socket it subscribes with the doc's state vector, applies what
 * the server has that it lacks, and sends back what the server lacks; that one
 * exchange covers everything either side missed while apart, so local changes
 * made offline need no queue of their own.
 */
import * as Y from 'yjs'
import {
  applyAwarenessUpdate,
  Awareness,
  encodeAwarenessUpdate,
  removeAwarenessStates
} from 'y-protocols/awareness'
import { Emitter } from './emitter.js'
import { TRANSIENT_CODES } from './errors.js'

export class DocProvider extends Emitter {
  /**
   * Made by CollabClient#doc.
   * @param {import('./client.js').CollabClient} client
   * @param {string} name
   * @param {Y.Doc} doc
   */
  constructor (client, name, doc) {
    super()
    if (doc === null || typeof doc !== 'object' || typeof doc.on !== 'function' ||
        typeof doc.clientID !== 'number') {
      throw new TypeError('client.doc(name, ydoc) needs a Y.Doc')
    }
    this.client = client
    this.name = name
    this.doc = doc
    /** Presence for editor bindings (y-codemirror.next, y-prosemirror, Tiptap...). */
    this.awareness = new Awareness(doc)
    /** True once the doc holds everything the server had when the current socket subscribed. */
    this.synced = false

    /** doc.update requests sent and not answered yet. */
    this._unacked = 0
    /** Local changes that no request in flight carries (made offline, or whose request was lost). */
    this._unsent = 0
    /** Set when a change is made; cleared (with a 'saved' event) once the server has them all. */
    this._unsaved = false
    this._subscribed = false
    /** A doc.subscribe went out on the current socket (answered or not). */
    this._subscribeSent = false
    /** Bumped by each new subscribe, so answers to an abandoned one are ignored. */
    this._syncRun = 0
    this._syncFailures = 0
    this._resyncTimer = null
    this._destroyed = false

    this._onDocUpdate = (update, origin) => {
      if (origin !== this) this._localChange(update)
    }
    this._onAwarenessUpdate = ({ added, updated, removed }) => {
      // Announce our own state only: other clients' states reach the server
      // from those clients, and the states this copy times out locally must
      // not be removed for everyone. (Any origin: y-protocols bumps our clock
      // with the provider as origin when the server says we are gone.)
      const ours = this.awareness.clientID
      if (added.includes(ours) || updated.includes(ours) || removed.includes(ours)) {
        this._sendAwareness()
      }
    }
    this._onDocDestroy = () => this.destroy()
    doc.on('update', this._onDocUpdate)
    doc.on('destroy', this._onDocDestroy)
    this.awareness.on('update', this._onAwarenessUpdate)
    this._stopForwardingStatus = client.on('status', (status) => this.emit('status', status))
  }

  /** The client's connection status: 'connecting', 'connected' or 'disconnected'. */
  get status () {
    return this.client.status
  }

  /**
   * Local changes the server has not acknowledged as committed yet: updates in
   * flight, plus those made while not subscribed (offline), which the next
   * sync sends as one update. 0 means everything typed here is durable.
   */
  get unsyncedChanges () {
    return this._unacked + this._unsent
  }

  /** Stop syncing: remove our awareness state, unsubscribe, and forget the doc. */
  destroy () {
    if (this._destroyed) return
    this._dispose()
    // Also when the subscribe is still in flight: the server handles this
    // document's requests in order, so the unsubscribe comes after it.
    if (this._subscribeSent) {
      this._subscribed = false
      this._subscribeSent = false
      this.client._request({ op: 'doc.unsubscribe', doc: this.name }).catch(() => {
        // Gone already (the socket dropped): the server unsubscribed us then.
      })
    }
  }

  // -- called by the client -----------------------------------------------------------

  _onConnected () {
    this._sync()
  }

  _onDisconnected () {
    this._syncRun++
    this._subscribed = false
    this._subscribeSent = false
    clearTimeout(this._resyncTimer)
    this._resyncTimer = null
    // Everyone else's cursors would freeze where they were: drop them until
    // the next subscribe tells us who is still here.
    const others = [...this.awareness.getStates().keys()].filter((id) => id !== this.awareness.clientID)
    removeAwarenessStates(this.awareness, others, this)
    // Forget their clocks too: the server's snapshot after the reconnect carries
    // the clocks we saw last, which y-protocols ignores as not newer, so they would
    // stay invisible until their next renewal (15 s).
    for (const id of others) this.awareness.meta.delete(id)
    this._setSynced(false)
  }

  _onClientClosed () {
    this._dispose()
  }

  _receiveUpdate (update) {
    try {
      Y.applyUpdate(this.doc, update, this)
    } catch (error) {
      this.emit('error', error)
    }
  }

  /**
   * The document was deleted or replaced on the server, which unsubscribed us: this
   * Y.Doc holds the content that ended, and the server refuses it from now on
   * (docs/documents.md). Stop syncing; a new DocProvider with a new Y.Doc follows
   * the document that comes next.
   */
  _receiveDeleted (epoch) {
    this._subscribed = false
    this._subscribeSent = false
    this.emit('deleted', { epoch })
    this._dispose()
  }

  _receiveAwareness (update) {
    try {
      applyAwarenessUpdate(this.awareness, update, this)
    } catch (error) {
      this.emit('error', error)
    }
  }

  // -- syncing ----------------------------------------------------------------------

  /** Subscribe (or resubscribe) and exchange what each side lacks. */
  async _sync () {
    const run = ++this._syncRun
    this._subscribed = false
    this._subscribeSent = this.client._isOpen()
    let result
    try {
      result = await this.client._request({
        op: 'doc.subscribe', doc: this.name, sv: Y.encodeStateVector(this.doc)
      })
    } catch (error) {
      if (run !== this._syncRun || this._destroyed) return
      // 'disconnected': the next socket syncs again. Anything else (an
      // invalid name, a server-side outage) is reported; passing outages are
      // retried while this socket lasts.
      if (error.code !== 'disconnected' && error.code !== 'closed') {
        this.emit('error', error)
        if (TRANSIENT_CODES.has(error.code)) this._resyncLater()
      }
      return
    }
    if (run !== this._syncRun || this._destroyed) return
    this._syncFailures = 0
    try {
      Y.applyUpdate(this.doc, result.update, this)
      if (result.awareness != null) applyAwarenessUpdate(this.awareness, result.awareness, this)
    } catch (error) {
      this.emit('error', error) // an answer Yjs cannot read: nothing sensible to sync against
      return
    }
    this._subscribed = true
    // The diff against the server's state vector carries every change it
    // lacks, including all those counted as unsent: they become this one update.
    this._unsent = 0
    const missing = Y.encodeStateAsUpdate(this.doc, result.sv)
    if (!isEmptyUpdate(missing)) this._sendUpdate(missing)
    this._announceAwareness()
    this._setSynced(true)
    this._checkSaved()
  }

  /** Subscribe again after a failure, later (the server may be busy or restarting). */
  _resyncLater () {
    if (this._resyncTimer !== null || this._destroyed) return
    this._resyncTimer = setTimeout(() => {
      this._resyncTimer = null
      if (this.client._isOpen()) this._sync()
    }, this.client._retryDelay(this._syncFailures++))
  }

  _localChange (update) {
    this._unsaved = true
    if (this._subscribed) {
      this._sendUpdate(update)
    } else {
      this._unsent++
    }
  }

  _sendUpdate (update) {
    this._unsaved = true
    this._unacked++
    this.client._request({ op: 'doc.update', doc: this.name, update }).then(() => {
      // {"seq": n}: committed to the store (seq null: the server had it already).
      this._unacked--
      this._checkSaved()
    }, (error) => {
      this._unacked--
      if (this._destroyed) return
      // Not acknowledged: the server may lack it until the next sync, which
      // sends it again as part of its diff.
      this._unsent++
      if (error.code !== 'disconnected' && error.code !== 'closed') {
        this.emit('error', error)
        this._resyncLater()
      }
    })
  }

  _checkSaved () {
    if (this._unsaved && this.unsyncedChanges === 0 && !this._destroyed) {
      this._unsaved = false
      this.emit('saved')
    }
  }

  // -- awareness ----------------------------------------------------------------------

  _sendAwareness () {
    if (!this._subscribed) return // announced by the next sync
    const update = encodeAwarenessUpdate(this.awareness, [this.awareness.clientID])
    // A notification: awareness changes at typing speed and needs no answer.
    this.client._notify({ op: 'doc.awareness', doc: this.name, update })
  }

  /**
   * Tell the server our state after subscribing. Setting it again bumps its
   * clock: the server keeps our last clock when a socket closes, and only a
   * newer clock replaces that removal.
   */
  _announceAwareness () {
    const state = this.awareness.getLocalState()
    if (state !== null) this.awareness.setLocalState(state)
  }

  _setSynced (synced) {
    if (this.synced === synced) return
    this.synced = synced
    this.emit('synced', synced)
  }

  _dispose () {
    this._destroyed = true
    this._syncRun++
    clearTimeout(this._resyncTimer)
    this.doc.off('update', this._onDocUpdate)
    this.doc.off('destroy', this._onDocDestroy)
    // Tell the others we left (while the socket is still up), then stop the
    // awareness' renewal timer.
    removeAwarenessStates(this.awareness, [this.awareness.clientID], 'destroy')
    this.awareness.off('update', this._onAwarenessUpdate)
    this.awareness.destroy()
    this._stopForwardingStatus()
    this.client._forgetDoc(this)
    this._setSynced(false)
    this._removeAllListeners()
  }
}

/** Yjs encodes "no changes" as two zero bytes (no structs, an empty delete set). */
function isEmptyUpdate (update) {
  return update.length === 2 && update[0] === 0 && update[1] === 0
}
