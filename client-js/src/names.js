/**
 * The server's rules for document names, actor keys (docs/protocol.md,
 * section 3) and actor types, checked here so a typo fails at once with a
 * clear message instead of as an asynchronous error from the server.
 */
const NAME = /^[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/
const MAX_NAME_LENGTH = 128

/** Throws a TypeError unless `name` is a valid document name or actor key. */
export function checkName (name, what) {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH ||
      !NAME.test(name) || name.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new TypeError(`invalid ${what} ${JSON.stringify(name)}: use 1-${MAX_NAME_LENGTH} ` +
      'characters of A-Z a-z 0-9 . _ ~ - in /-separated segments, none of them . or ..')
  }
}

/**
 * The server's rule for actor types (KIND_PATTERN in collab/runtime/actor.py):
 * a lowercase letter, then up to 63 of a-z 0-9 _ -.
 */
const ACTOR_TYPE = /^[a-z][a-z0-9_-]{0,63}$/

/** Throws a TypeError unless `type` is a valid actor type. */
export function checkActorType (type) {
  if (typeof type !== 'string' || !ACTOR_TYPE.test(type)) {
    throw new TypeError(`invalid actor type ${JSON.stringify(type)}: actor types are a lowercase ` +
      'letter then up to 63 of a-z 0-9 _ -')
  }
}
