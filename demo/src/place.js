// What the page's address asks for: the document (?doc=), the user (?user=, or
// the token's `sub`) and the token (#token= or ?token=), read once at load, and
// whether the document name is one the server accepts.

import { tokenFromLocation, tokenUser } from './access.js'

/**
 * The server's rule for document and room names (collab/gateway/names.py,
 * docs/protocol.md section 3): 1-128 characters of A-Z a-z 0-9 . _ ~ - in
 * /-separated segments, none of them empty, `.` or `..`.
 */
export const MAX_NAME_LENGTH = 128
const NAME_CHARS = /^[A-Za-z0-9._~/-]*$/
export const NAME_RULE = `1-${MAX_NAME_LENGTH} characters of A-Z a-z 0-9 . _ ~ - ` +
  '(or /-separated parts of them, like team/notes)'

const COLOURS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#f032e6', '#9a6324']
const NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Ken']

/**
 * Why the server would refuse `name` as a document name, in words for the
 * page, or null when it is a valid name.
 *
 * @param {string} name
 * @returns {string | null}
 */
export function nameProblem (name) {
  const chars = [...name]
  if (chars.length === 0) return 'it is empty'
  if (chars.length > MAX_NAME_LENGTH) return `it is ${chars.length} characters long`
  if (!NAME_CHARS.test(name)) {
    const bad = chars.find((ch) => !NAME_CHARS.test(ch))
    return `it contains ${bad.trim() === '' ? 'a space or blank' : `the character “${bad}”`}`
  }
  if (name.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    return 'it has an empty, “.” or “..” part between slashes'
  }
  return null
}

function hash (text) {
  let h = 0
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) >>> 0
  return h
}

const params = new URLSearchParams(location.search)
export const docName = params.get('doc') || 'welcome'
export const token = tokenFromLocation(location)
// With a token the server makes its `sub` the room's user and refuses any other name.
export const userName = (token !== null && tokenUser(token)) || params.get('user') ||
  `${NAMES[Math.floor(Math.random() * NAMES.length)]}-${Math.floor(Math.random() * 100)}`
export const colour = COLOURS[hash(userName) % COLOURS.length]
