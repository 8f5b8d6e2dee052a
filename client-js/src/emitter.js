/**
 * A minimal event emitter shared by the client, providers and actor handles.
 *
 * Unlike Node's EventEmitter it works the same in browsers, and an 'error'
 * event without listeners is simply dropped: the client reports problems
 * through events but must never crash an app that does not listen for them.
 */
export class Emitter {
  constructor () {
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map()
  }

  /** Call `listener` on every `event`; returns a function that removes it. */
  on (event, listener) {
    let listeners = this._listeners.get(event)
    if (listeners === undefined) {
      listeners = new Set()
      this._listeners.set(event, listeners)
    }
    listeners.add(listener)
    return () => this.off(event, listener)
  }

  /** Call `listener` on the next `event` only; returns a function that removes it. */
  once (event, listener) {
    const off = this.on(event, (...args) => {
      off()
      listener(...args)
    })
    return off
  }

  off (event, listener) {
    const listeners = this._listeners.get(event)
    if (listeners !== undefined) {
      listeners.delete(listener)
      if (listeners.size === 0) this._listeners.delete(event)
    }
  }

  emit (event, ...args) {
    const listeners = this._listeners.get(event)
    if (listeners === undefined) return
    // A copy, so listeners may unsubscribe while being called.
    for (const listener of [...listeners]) {
      try {
        listener(...args)
      } catch (error) {
        // A failing listener must not break the caller (often the socket's
        // message loop): report it the way EventTarget does, out of band.
        queueMicrotask(() => { throw error })
      }
    }
  }

  /** Drop every listener (used when the emitting object is destroyed). */
  _removeAllListeners () {
    this._listeners.clear()
  }
}
