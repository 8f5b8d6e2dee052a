// Type-checked by types.test.js (tsc --noEmit, strict, with the DOM library):
// what a TypeScript user writes, which must compile against index.d.ts.
import * as Y from 'yjs'
import { CollabClient, CollabError, type CloseInfo, type Message, type WebSocketLike } from '../../index.js'

// The browser's WebSocket (and Node 22's global one, the same type).
const client = new CollabClient('ws://127.0.0.1:1234/ws', {
  WebSocket: globalThis.WebSocket,
  heartbeat: { interval: 15_000, timeout: 30_000 }
})
const offline = new CollabClient(new URL('ws://127.0.0.1:1234/ws'), { WebSocket: WebSocket, heartbeat: false })

// A WebSocket-like class of one's own (a test double, a wrapper).
class Recorder implements WebSocketLike {
  binaryType = 'arraybuffer'
  readyState = 0
  frames: Uint8Array[] = []
  onopen: ((event: unknown) => void) | null = null
  onmessage: ((event: unknown) => void) | null = null
  onclose: ((event: unknown) => void) | null = null
  onerror: ((event: unknown) => void) | null = null
  constructor (readonly url: string) {}
  send (data: Uint8Array): void { this.frames.push(data) }
  close (): void {}
}
const recorded = new CollabClient('ws://127.0.0.1:1234/ws', { WebSocket: Recorder })

const provider = client.doc('notes', new Y.Doc())
provider.on('synced', (synced: boolean) => { console.log(synced, provider.unsyncedChanges) })
client.on('close', ({ code, reason, opened }: CloseInfo) => { console.log(code, reason, opened) })

const room = client.room('general', { user: 'ann' })
room.on('message', (message: Message) => { console.log(message.seq, message.body) })

async function count (): Promise<number> {
  try {
    return await client.actor('order-book', 'k').call<number>('count')
  } catch (error) {
    if (error instanceof CollabError && error.code === 'closed') return 0
    throw error
  }
}
void count()
for (const c of [client, offline, recorded]) c.close()
