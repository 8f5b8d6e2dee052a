/**
 * collab's JavaScript client: Yjs documents, chat rooms and actors over one
 * WebSocket to the server's native protocol (`/ws`). See README.md.
 */
export { CollabClient } from './src/client.js'
export { DocProvider } from './src/doc.js'
export { ActorHandle } from './src/actor.js'
export { Room } from './src/room.js'
export { CollabError } from './src/errors.js'
export { Emitter } from './src/emitter.js'
