// The demo's side of authentication (docs/auth.md): the token in the page's own
// address, its user for display, and telling "the server refused us" apart from
// "the server is unreachable", which a browser WebSocket cannot do by itself: it
// hides the HTTP 401 that refused an upgrade behind a bare close code 1006.

/** Close codes a collab socket ends with when its token stops being good: expired, revoked. */
export const AUTH_CLOSE_CODES = new Set([4401, 4403])

/**
 * The token in the page address, or null: `#token=<jwt>` (the fragment never
 * leaves the browser, so no proxy or access log sees it with the page) wins over
 * `?token=<jwt>`.
 *
 * @param {Location} place the page's location
 */
export function tokenFromLocation (place) {
  const fromHash = new URLSearchParams(place.hash.slice(1)).get('token')
  const fromQuery = new URLSearchParams(place.search).get('token')
  return fromHash || fromQuery || null
}

/**
 * The `sub` claim of a JWT, for display only: nothing here checks the signature
 * (the server does). Null when the token cannot be read or has no string `sub`.
 *
 * @param {string} token
 */
export function tokenUser (token) {
  try {
    const base64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    const bytes = Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')),
      (ch) => ch.charCodeAt(0))
    const { sub } = JSON.parse(new TextDecoder().decode(bytes))
    return typeof sub === 'string' && sub.length > 0 ? sub : null
  } catch {
    return null
  }
}

/**
 * Ask the HTTP API whether `token` may read document `doc` (the server checks a
 * token there exactly as at a WebSocket upgrade, and answers why not).
 *
 * @param {string} doc a valid document name (URL-safe by the server's rules)
 * @param {string | null} token
 * @returns {Promise<{status: 401 | 403, reason: string} | null>} the refusal, or
 *   null when there is none to report: access is fine (or auth is off), or the
 *   server could not be asked (down, draining), which the reconnect loop rides out
 */
export async function checkAccess (doc, token) {
  let response
  try {
    response = await fetch(`/api/docs/${doc}?format=json`, {
      headers: token === null ? {} : { Authorization: `Bearer ${token}` },
      cache: 'no-store'
    })
  } catch {
    return null
  }
  if (response.status !== 401 && response.status !== 403) return null
  let reason = ''
  try {
    const { error } = await response.json()
    if (typeof error?.message === 'string') reason = error.message
  } catch {
    // no JSON body: the status says enough
  }
  return { status: response.status, reason }
}

/**
 * A WebSocket class for CollabClient's `WebSocket` option that tells
 * `onEnd({code, opened})` how each of its sockets ended, beside whatever the
 * client itself does on close.
 *
 * @param {(end: {code: number, opened: boolean}) => void} onEnd
 */
export function watchedWebSocket (onEnd) {
  return class WatchedWebSocket extends WebSocket {
    constructor (...args) {
      super(...args)
      let opened = false
      this.addEventListener('open', () => { opened = true })
      this.addEventListener('close', (event) => onEnd({ code: event.code, opened }))
    }
  }
}
