/**
 * Protocol messages to and from WebSocket frames.
 *
 * The client always sends MessagePack in binary frames, so the server answers
 * and sends events in MessagePack too (docs/protocol.md, section 2) and bytes
 * (Yjs updates, state vectors) travel as raw `bin` rather than base64.
 */
import { Decoder, Encoder } from '@msgpack/msgpack'
import { CollabError } from './errors.js'

// `ignoreUndefined`: optional fields left undefined (a history() without
// `before`, say) are omitted rather than sent as nil.
const encoder = new Encoder({ ignoreUndefined: true })
const decoder = new Decoder()

/** @returns {Uint8Array} the MessagePack bytes of one protocol message */
export function encodeMessage (message) {
  return encoder.encode(message)
}

/**
 * Decode one received frame: an ArrayBuffer or a Uint8Array (a Node Buffer)
 * from a binary frame. Throws a CollabError('protocol') for anything that is
 * not a map, or for a text frame, which this client never asks for.
 */
export function decodeMessage (data) {
  if (typeof data === 'string') {
    throw new CollabError('protocol', 'received a text frame; this client only speaks MessagePack')
  }
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data)
  let message
  try {
    message = decoder.decode(bytes)
  } catch (error) {
    throw new CollabError('protocol', `received a frame that is not MessagePack: ${error.message}`)
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    throw new CollabError('protocol', 'received a frame that is not a map')
  }
  return message
}
