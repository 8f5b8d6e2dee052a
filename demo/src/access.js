// The demo's side of authentication (docs/auth.md): the token in the page's own
// address, its user for display, and telling "the server refused us" apart from
// "the server is unreachable". The client's 'close' event says how each socket
// ended: a refused token closes an opened socket with 4401 / 4403, but a browser
// hides an HTTP refusal before the upgrade (a bad Origin, too many connections)
// behind a bare 1006 on a socket that never opened, so the HTTP API is asked then.

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
 * Fill the page's #access section (index.html, tiptap.html) with why the server
 * refused, and how to get a token, and show it.
 *
 * @param {{status: 401 | 403, reason: string}} refusal as checkAccess answers
 * @param {object} how
 * @param {boolean} how.fatal whether the page gave up (then its body's
 *   `data-access` is `refused` and the CSS hides the editor) or goes on with
 *   less (`limited`)
 * @param {string} how.page the page's path and how.doc its document, for the
 *   address to open with a token
 * @param {string} how.user the page's user, for a 403's title
 */
export function showRefusal ({ status, reason }, { fatal, page, doc, user }) {
  const token = tokenFromLocation(location)
  let title
  if (status === 401 && token === null) title = 'This server needs a token to let you in.'
  else if (status === 401) title = 'The server refused your token.'
  else title = `Your token does not give ${user} access to everything here.`
  document.querySelector('#access-title').textContent = title
  // Without a token the server's reason ("missing token: …") would only name the header of our check.
  document.querySelector('#access-reason').textContent = reason && token !== null ? `The server said: ${reason}` : ''
  document.querySelector('#access-link').textContent = `${location.origin}${page}?doc=${doc}#token=<the token>`
  document.querySelector('#access').hidden = false
  document.body.dataset.access = fatal ? 'refused' : 'limited'
}
