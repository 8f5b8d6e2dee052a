/**
 * A real `collab serve` process for the tests, on port 0 and a SQLite file in
 * a temporary directory of its own. It can be stopped (SIGTERM: sockets close
 * with 1012), killed (SIGKILL: a crash) and started again on the same port
 * and the same database, so clients reconnect to the same URL and find their data.
 *
 * The Python comes from $COLLAB_PYTHON (the pytest wrapper passes its own),
 * else `python3`; run from the repository root, so `collab` imports from there
 * ($COLLAB_REPO, to test against another checkout) and test apps from this directory.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = dirname(fileURLToPath(import.meta.url))
/** The checkout whose `collab` runs: this one, unless $COLLAB_REPO names another. */
const REPO_ROOT = process.env.COLLAB_REPO || join(HERE, '..', '..')
const READY = /collab serving on http:\/\/([^:\s]+):(\d+)/
/** The one wait budget: how long anything that should happen may take. */
export const TIMEOUT_MS = 20_000

export class CollabServer {
  /**
   * @param {{app?: string, env?: object}} [options] `app`: a `module:registry`
   *   importable from test/ (e.g. 'app:registry' for test/app.py)
   */
  constructor ({ app, env = {} } = {}) {
    this.app = app
    this.env = env
    this.dir = mkdtempSync(join(tmpdir(), 'collab-client-js-'))
    this.dbPath = join(this.dir, 'x.db')
    this.port = 0
    this.proc = null
    this.log = ''
  }

  get wsUrl () {
    return `ws://127.0.0.1:${this.port}/ws`
  }

  get httpUrl () {
    return `http://127.0.0.1:${this.port}`
  }

  /** Start (again on the same port and database, if it ran before); resolves once it listens. */
  async start () {
    const python = process.env.COLLAB_PYTHON || 'python3'
    const args = ['-m', 'collab', 'serve', '--host', '127.0.0.1', '--port', String(this.port),
      '--database-url', `sqlite:///${this.dbPath}`]
    if (this.app) args.push('--app', this.app)
    const env = { ...process.env, ...this.env }
    delete env.PORT
    delete env.DATABASE_URL
    env.PYTHONPATH = [REPO_ROOT, HERE, env.PYTHONPATH].filter(Boolean).join(':')
    const proc = spawn(python, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc = proc
    proc.stderr.on('data', (chunk) => { this.log += chunk })
    await new Promise((resolve, reject) => {
      let stdout = ''
      const timer = setTimeout(() => fail(new Error('did not listen')), TIMEOUT_MS)
      const fail = (error) => {
        clearTimeout(timer)
        proc.kill('SIGKILL')
        reject(new Error(`collab serve ${error.message}; log:\n${this.log}`))
      }
      proc.on('error', fail)
      proc.on('exit', (code) => fail(new Error(`exited (${code}) before listening`)))
      proc.stdout.on('data', (chunk) => {
        stdout += chunk
        this.log += chunk
        const match = READY.exec(stdout)
        if (match) {
          clearTimeout(timer)
          proc.removeAllListeners('exit')
          proc.removeAllListeners('error')
          this.port = Number(match[2])
          resolve()
        }
      })
    })
    return this
  }

  /** SIGTERM: a graceful stop (clients see 1012); resolves once the process exited. */
  stop () {
    return this._signal('SIGTERM')
  }

  /** SIGKILL: a crash; only what was committed survives. */
  kill () {
    return this._signal('SIGKILL')
  }

  async restart () {
    await this.stop()
    return this.start()
  }

  /** Stop it and remove its directory. */
  async dispose () {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }

  async _signal (signal) {
    const proc = this.proc
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill(signal)
    const timer = setTimeout(() => proc.kill('SIGKILL'), TIMEOUT_MS)
    await exited
    clearTimeout(timer)
    this.proc = null
  }
}
