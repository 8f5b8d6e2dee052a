/**
 * How long to wait before reconnect attempt number `attempt` (0 for the
 * first): "full jitter" exponential backoff, a random delay between 0 and
 * min(maxDelay, baseDelay * 2^attempt). The randomness spreads the clients a
 * restarted server gets back over the whole window instead of a stampede.
 *
 * @param {number} attempt
 * @param {{baseDelay: number, maxDelay: number}} options
 * @param {() => number} [random] a source in [0, 1), for tests
 */
export function backoffDelay (attempt, { baseDelay, maxDelay }, random = Math.random) {
  const ceiling = Math.min(maxDelay, baseDelay * 2 ** Math.min(attempt, 30))
  return Math.floor(random() * ceiling)
}
