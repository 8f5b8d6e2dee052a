/**
 * The server's rule for document names and actor keys (docs/protocol.md,
 * section 3), checked here so a typo fails at once with a clear message
 * instead of as an asynchronous 'invalid_name' from the server.
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
