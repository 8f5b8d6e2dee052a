/**
 * The one error type the client rejects with. `code` is machine-readable:
 * the server's error codes (docs/protocol.md, section 8, and whatever an
 * actor chooses, e.g. 'rate_limited'), plus three of the client's own:
 *
 * - 'disconnected': the socket dropped while the request was in flight, so
 *   its outcome is unknown (room sends are retried instead, see Room#send);
 * - 'closed': the client, provider or actor handle was closed first;
 * - 'protocol': the server sent something this client cannot understand.
 */
export class CollabError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor (code, message) {
    super(message)
    this.name = 'CollabError'
    this.code = code
  }

  /** The error carried by a failed response: `{"code", "message"}`. */
  static fromResponse (error) {
    const code = typeof error?.code === 'string' ? error.code : 'protocol'
    const message = typeof error?.message === 'string' ? error.message : 'the server refused the request'
    return new CollabError(code, message)
  }
}

/**
 * Server error codes that describe a passing condition (a restart, an owner
 * moving between processes, a store or Redis outage): connecting again later
 * is expected to work, so handles retry rather than give up.
 */
export const TRANSIENT_CODES = new Set([
  'shutting_down',
  'store_unavailable',
  'owned_elsewhere',
  'owner_unreachable',
  'cluster_unavailable',
  'call_timeout'
])
