// Type declarations for collab's JavaScript client (hand-written; the
// package ships plain JavaScript). See README.md for the behaviour.

import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'

export type Status = 'connecting' | 'connected' | 'disconnected'

/** Removes the listener it was returned for. */
export type Unsubscribe = () => void

/** The event emitter every client object extends. */
export class Emitter<Events extends { [name: string]: (...args: any[]) => void }> {
  on<E extends keyof Events & string>(event: E, listener: Events[E]): Unsubscribe
  once<E extends keyof Events & string>(event: E, listener: Events[E]): Unsubscribe
  off<E extends keyof Events & string>(event: E, listener: Events[E]): void
  emit<E extends keyof Events & string>(event: E, ...args: Parameters<Events[E]>): void
}

/**
 * Every rejection from the client. `code` is the server's error code
 * (docs/protocol.md section 8, or an actor's own such as 'rate_limited'), or
 * one of the client's: 'disconnected' (the socket dropped while the request
 * was in flight), 'closed' (the client or handle was closed first),
 * 'protocol' (an unreadable frame).
 */
export class CollabError extends Error {
  constructor(code: string, message: string)
  readonly name: 'CollabError'
  readonly code: string
  static fromResponse(error: { code?: unknown, message?: unknown } | undefined): CollabError
}

/**
 * The frames the client sends: a Uint8Array over an ArrayBuffer (never a
 * SharedArrayBuffer), which lib.dom's `WebSocket.send(BufferSource)` takes.
 * Spelled through `slice` so that it is `Uint8Array<ArrayBuffer>` in
 * TypeScript 5.7+ and plain `Uint8Array` in older versions, whose typed
 * arrays are not generic.
 */
export type SentBytes = ReturnType<Uint8Array['slice']>

/** What the client needs of a WebSocket: the browser's has it, and so has the `ws` package's. */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  send(data: SentBytes): void
  close(code?: number, reason?: string): void
  /** The `ws` package's: drops the connection without a closing handshake (used on a dead socket). */
  terminate?(): void
  onopen: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
}

/** A WebSocket class: the browser's, or the `ws` package's in Node. */
export type WebSocketClass = new (url: string) => WebSocketLike

export interface CollabClientOptions {
  /** Sent as `tokenTransport` says; a function is called once and again after a close with code 4401. */
  token?: string | null | (() => string | null | Promise<string | null>)
  /**
   * Where the token goes: 'message' (the default), the socket's first frame
   * `{op: 'auth', token}`, out of URLs and logs; 'query', the `token` query
   * parameter of the socket URL, for servers or proxies that need it there.
   */
  tokenTransport?: 'message' | 'query'
  /** Defaults to globalThis.WebSocket. */
  WebSocket?: WebSocketClass
  /** More query parameters for the socket URL. */
  params?: Record<string, string | number | boolean>
  /** Milliseconds a socket may take to open (and, with a token in the auth message, be accepted) before it is abandoned and retried (10000). */
  connectTimeout?: number
  /** Reconnect backoff in milliseconds: full jitter, base 250, at most 10000. */
  reconnect?: { baseDelay?: number, maxDelay?: number }
  /**
   * Noticing a dead socket, in milliseconds: after `interval` (15000) with
   * nothing received, a `ping` request is sent; when nothing at all has been
   * received for `timeout` (30000), the socket is dropped (close code 1006,
   * reason 'heartbeat timeout') and the client reconnects. `false`: never.
   */
  heartbeat?: { interval?: number, timeout?: number } | false
}

/** How a socket ended (the client's 'close' event). */
export interface CloseInfo {
  /**
   * The WebSocket close code: 4401 token refused or expired, 4403 revoked or
   * refused by the auth hook, 4429 rate limited, 1012 server restart, 1006 the
   * connection broke, never came up, timed out or went silent past the
   * heartbeat's timeout; 1000 from client.close().
   */
  code: number
  reason: string
  /** Whether the socket had opened (false: the handshake itself failed). */
  opened: boolean
}

export type ClientEvents = {
  status: (status: Status) => void
  /**
   * A refused token (CollabError 'unauthorized', or 'forbidden' from the
   * server's hook), failed notifications, unreadable frames, token function
   * failures, refused actor connections.
   */
  error: (error: Error) => void
  /** Every socket that ends, before the client reconnects (until close()). */
  close: (info: CloseInfo) => void
}

export class CollabClient extends Emitter<ClientEvents> {
  /** `url`: the server's native endpoint, e.g. 'ws://127.0.0.1:1234/ws'. Connects at once. */
  constructor(url: string | URL, options?: CollabClientOptions)
  readonly url: string
  readonly status: Status
  /** Share `ydoc` as the server document `name`. One provider per name per client. */
  doc(name: string, ydoc: Y.Doc): DocProvider
  /** Join the chat room `name` as `user`. */
  room(name: string, options: { user: string }): Room
  /** A handle on the actor `type`/`key`; connects at once unless `connect` is false. */
  actor(type: string, key: string, options?: { params?: Record<string, unknown>, connect?: boolean }): ActorHandle
  /** Close for good: destroys providers, leaves actors, rejects pending requests with code 'closed'. */
  close(): void
}

export type DocProviderEvents = {
  status: (status: Status) => void
  /** true once subscribed and caught up on a socket; false when that socket drops. */
  synced: (synced: boolean) => void
  /** Every local change so far is committed on the server (unsyncedChanges is 0). */
  saved: () => void
  error: (error: Error) => void
}

export class DocProvider extends Emitter<DocProviderEvents> {
  readonly client: CollabClient
  readonly name: string
  readonly doc: Y.Doc
  /** A y-protocols Awareness on `doc`, for editor bindings. */
  readonly awareness: Awareness
  readonly synced: boolean
  readonly status: Status
  /** Local updates not yet acknowledged as committed by the server. */
  readonly unsyncedChanges: number
  /** Remove our awareness state, unsubscribe and stop syncing. */
  destroy(): void
}

export class ActorHandle<Events extends { [name: string]: (data: any) => void } = { [name: string]: (data: any) => void }>
  extends Emitter<Events> {
  readonly client: CollabClient
  readonly type: string
  readonly key: string
  readonly params: Record<string, unknown>
  /** Whether the current socket is connected to the actor. */
  readonly connected: boolean
  /** Resolves once first connected; rejects (with the actor's CollabError) if the connection is refused. */
  readonly ready: Promise<void>
  /** Run `action` with positional arguments; resolves with its return value. */
  call<T = any>(action: string, ...args: unknown[]): Promise<T>
  /** Run `action` with positional and named arguments. */
  callWith<T = any>(action: string, options?: { args?: unknown[], kwargs?: Record<string, unknown> }): Promise<T>
  /** Append `message` to the actor's durable queue `queue`; resolves once committed. */
  enqueue(queue: string, message: unknown): Promise<{ seq: number }>
  /** End the connection; waiting calls reject with code 'closed'. */
  disconnect(): Promise<void>
}

export interface Message {
  seq: number
  client_id: string
  user: string
  body: string
  meta: Record<string, unknown> | null
  /** Unix time in seconds. */
  created_at: number
  edited_at: number | null
  deleted: boolean
  /** emoji -> users */
  reactions: Record<string, string[]>
}

export type RoomEvents = {
  /** A new message; after a reconnect, also each one missed meanwhile. Once per seq, in order. */
  message: (message: Message) => void
  edit: (message: Message) => void
  delete: (message: Message) => void
  reaction: (data: { seq: number, user: string, emoji: string, add: boolean, reactions: Record<string, string[]> }) => void
  typing: (data: { user: string, active: boolean }) => void
  read: (data: { user: string, seq: number }) => void
  presence: (data: { user: string, status: 'online' | 'offline', devices: number }) => void
}

export class Room extends ActorHandle<RoomEvents> {
  readonly name: string
  readonly user: string
  /** The highest seq emitted as 'message' (or the room's newest when first joined). */
  readonly lastSeq: number
  /**
   * Post a message (resolves once committed). Made offline, it is sent after
   * the reconnect; interrupted, it is resent with the same client id and
   * posted once.
   */
  send(body: string, meta?: Record<string, unknown> | null, options?: { clientId?: string }): Promise<{ seq: number, message: Message }>
  edit(seq: number, body: string): Promise<{ message: Message }>
  delete(seq: number): Promise<{ message: Message }>
  react(seq: number, emoji: string, add?: boolean): Promise<{ message: Message }>
  history(options?: { before?: number, after?: number, limit?: number }): Promise<{ messages: Message[], has_more: boolean }>
  typing(active?: boolean): Promise<null>
  read(seq: number): Promise<{ user: string, seq: number }>
  unread(): Promise<{ count: number, last_read: number, last_seq: number }>
  presence(): Promise<{ users: Array<{ user: string, devices: number }>, typing: string[] }>
  receipts(): Promise<{ read: Record<string, number> }>
  /** Leave the room (ends this connection). */
  leave(): Promise<void>
}
