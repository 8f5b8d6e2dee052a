/**
 * Where the client's credentials come from: nothing, a fixed string, or a
 * (possibly async) function returning one.
 *
 * A function's result is kept and reused for every reconnect, so a flaky
 * network does not turn into a stream of calls to an auth endpoint; it is
 * called again only once the server has refused the token (a close with code
 * 4401) or the function itself failed.
 */
export class TokenSource {
  /** @param {undefined | null | string | (() => string | Promise<string>)} token */
  constructor (token) {
    if (token != null && typeof token !== 'string' && typeof token !== 'function') {
      throw new TypeError('token must be a string or a function returning one')
    }
    this._token = token
    /** @type {Promise<string | null> | null} */
    this._current = null
  }

  /** The token to connect with, or null for none. */
  get () {
    if (typeof this._token !== 'function') return Promise.resolve(this._token ?? null)
    if (this._current === null) {
      const current = Promise.resolve().then(() => this._token()).then((token) => {
        if (token != null && typeof token !== 'string') {
          throw new TypeError('the token function must return a string (or null)')
        }
        return token ?? null
      })
      // A failed call must not be cached: the next attempt asks again.
      current.catch(() => { if (this._current === current) this._current = null })
      this._current = current
    }
    return this._current
  }

  /** Forget the kept token: the next get() calls the function again. */
  invalidate () {
    this._current = null
  }
}
