/**
 * The TypeScript declarations (index.d.ts) as a TypeScript user meets them:
 * `tsc --noEmit` over test/types/, small programs that use the client the
 * way the README does (the browser's or Node's built-in WebSocket passed as
 * the WebSocket option, a WebSocket-like class of one's own, typed events).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TIMEOUT_MS } from './server.js'

const HERE = dirname(fileURLToPath(import.meta.url))

test('index.d.ts type-checks with globalThis.WebSocket and a WebSocket-like class', () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  const result = spawnSync(process.execPath, [tsc, '--project', join(HERE, 'types')], {
    encoding: 'utf8', timeout: TIMEOUT_MS * 3
  })
  assert.equal(result.status, 0, `tsc failed:\n${result.stdout}${result.stderr}`)
})
