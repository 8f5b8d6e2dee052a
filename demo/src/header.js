// The live parts of each page's header: the link to the other page, the avatar
// stack (who is here, from awareness) and the badge (connecting, offline, saving, saved, no access),
// which turns from "saved" to "saving…" only once changes have waited a while
// for the server, so that typing does not make it flicker.

/**
 * How long changes may wait for the server's acknowledgement before the badge
 * says "saving…": a local server acknowledges a keystroke in a few ms, so
 * without the wait the badge would flicker saved / saving on every keystroke.
 */
export const SAVING_SHOWN_AFTER_MS = 300

const LABELS = {
  refused: 'no access',
  connecting: 'connecting…',
  offline: 'offline',
  saving: 'saving…',
  saved: 'saved',
  'read-only': 'read-only'
}

/**
 * A function that shows `read()` on `badge`: call it whenever the state may have
 * changed. The badge's `data-state` is the state shown and `data-unsaved` always
 * counts the changes not yet acknowledged (for tests and the curious).
 *
 * @param {HTMLElement} badge
 * @param {() => {state: keyof LABELS, unsaved: number}} read the state now
 * @returns {() => void}
 */
export function badgeRenderer (badge, read) {
  let savingTimer = null
  const show = (state) => {
    if (badge.dataset.state === state) return
    badge.dataset.state = state
    badge.textContent = LABELS[state]
  }
  return function render () {
    const { state, unsaved } = read()
    badge.dataset.unsaved = String(unsaved)
    if (state === 'saving' && badge.dataset.state === 'saved') {
      savingTimer ??= setTimeout(() => {
        savingTimer = null
        show(read().state)
      }, SAVING_SHOWN_AFTER_MS)
      return
    }
    clearTimeout(savingTimer)
    savingTimer = null
    show(state)
  }
}

/**
 * Keep `box` showing one avatar per awareness state with a `user` {name, color}
 * (initials on the colour; the title says who, and "(you)" for `ownId`).
 *
 * @param {HTMLElement} box
 * @param {import('y-protocols/awareness').Awareness} awareness
 * @param {number} ownId this page's client id (its Y.Doc's clientID)
 */
export function showAvatars (box, awareness, ownId) {
  const render = () => {
    box.replaceChildren()
    for (const [clientId, state] of awareness.getStates()) {
      const user = state.user
      if (!user || typeof user.name !== 'string') continue
      const avatar = document.createElement('span')
      avatar.className = 'avatar'
      avatar.textContent = user.name.slice(0, 2).toUpperCase() // never innerHTML: names are user input
      avatar.style.background = typeof user.color === 'string' ? user.color : '#888'
      avatar.title = clientId === ownId ? `${user.name} (you)` : user.name
      avatar.dataset.name = user.name
      box.append(avatar)
    }
  }
  awareness.on('change', render)
  render()
}

/**
 * Point every `<a data-page="/path">` at that page with this page's query and
 * fragment (the same ?doc=, ?user= and token), so that switching pages keeps
 * the document and the user.
 */
export function linkPages () {
  for (const link of document.querySelectorAll('a[data-page]')) {
    link.href = `${link.dataset.page}${location.search}${location.hash}`
  }
}
