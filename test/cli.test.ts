import assert from 'node:assert/strict'
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parseCliArgs } from '../src/cli/args.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const NODE = join(ROOT, 'node_modules/.bin/node')
const CLI = join(ROOT, 'src/cli/evluaserver.ts')
const app = (name: string): string => join(ROOT, 'test/fixtures/apps', name)

interface Cli {
  child: ChildProcess
  exited: Promise<number | null>
  stdout: () => string
  stderr: () => string
  /** Resolves when the stream's text from now on matches; rejects if the process exits first. */
  waitFor: (stream: 'stdout' | 'stderr', pattern: RegExp) => Promise<RegExpMatchArray>
}

function runCli (t: TestContext, args: string[], { script = CLI, env = {} }: { script?: string, env?: Record<string, string> } = {}): Cli {
  const child = spawn(NODE, [script, ...args], {
    cwd: ROOT,
    env: { ...process.env, PORT: '', HOST: '', NODE_ENV: 'development', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const text = { stdout: '', stderr: '' }
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { text.stdout += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { text.stderr += chunk })
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  const waitFor = (stream: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpMatchArray> => {
    const from = text[stream].length
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const match = text[stream].slice(from).match(pattern)
        if (match === null) return
        child[stream]!.off('data', onData)
        resolve(match)
      }
      const onData = (): void => setImmediate(check)
      child[stream]!.on('data', onData)
      exited.then((code) => {
        check()
        reject(new Error(`evluaserver exited (${code}) before ${stream} matched ${pattern}\n${text.stderr}`))
      }, reject)
    })
  }
  return { child, exited, stdout: () => text.stdout, stderr: () => text.stderr, waitFor }
}

/** Start evluaserver and return it once it printed its URL. */
async function serve (t: TestContext, args: string[]): Promise<Cli & { url: string }> {
  const cli = runCli(t, args)
  const [, url] = await cli.waitFor('stdout', /^(https?:\/\/\S+)\n/)
  return { ...cli, url }
}

async function get (url: string): Promise<{ status: number, body: string }> {
  const res = await fetch(url)
  return { status: res.status, body: await res.text() }
}

const NO_STACK = /^\s+at /m

// --- arguments ---------------------------------------------------------------------------------

test('parseCliArgs: appdir defaults to the cwd; flags are kept as text for the config loader', () => {
  assert.deepEqual(parseCliArgs([], '/srv'), { dir: '/srv', flags: {}, help: false })
  assert.deepEqual(parseCliArgs(['app', '--port', '0', '--host', '::1', '--workers', '2', '--watch'], '/srv'), {
    dir: '/srv/app',
    flags: { port: '0', host: '::1', workers: '2', watch: true },
    help: false
  })
  assert.equal(parseCliArgs(['-h']).help, true)
  assert.throws(() => parseCliArgs(['--prot', '80']), { code: 'EVLUA_ERR_CLI_USAGE', message: /Unknown option '--prot'/ })
  assert.throws(() => parseCliArgs(['a', 'b']), { code: 'EVLUA_ERR_CLI_USAGE', message: /at most one application directory/ })
  assert.throws(() => parseCliArgs(['--port']), { code: 'EVLUA_ERR_CLI_USAGE' })
})

test('--help prints the usage and exits 0', async (t) => {
  const cli = runCli(t, ['--help'])
  assert.equal(await cli.exited, 0)
  assert.match(cli.stdout(), /^Usage: evluaserver \[appdir\]/)
  assert.match(cli.stdout(), /--workers N/)
})

test('the bin shim runs the CLI', async (t) => {
  const cli = runCli(t, ['--help'], { script: join(ROOT, 'bin/evluaserver.js') })
  assert.equal(await cli.exited, 0)
  assert.match(cli.stdout(), /^Usage: evluaserver/)
})

test('an unknown flag exits 2 with the error and the usage', async (t) => {
  const cli = runCli(t, [app('cli-basic'), '--prot', '80'])
  assert.equal(await cli.exited, 2)
  assert.match(cli.stderr(), /^evluaserver: Unknown option '--prot'/)
  assert.match(cli.stderr(), /Usage: evluaserver/)
  assert.equal(cli.stdout(), '')
})

// --- start-up errors ---------------------------------------------------------------------------

test('an unknown config key exits 1 naming the key, without a stack', async (t) => {
  const cli = runCli(t, [app('cli-badconfig'), '--port', '0'])
  assert.equal(await cli.exited, 1)
  assert.equal(cli.stderr(),
    'evluaserver: unknown config key "lua.cpu_timeout" in config/default.json: did you mean "lua.cpu_timeout_ms"?\n')
  assert.equal(cli.stdout(), '')
})

test('a bad flag value exits 1 naming the flag', async (t) => {
  const cli = runCli(t, [app('cli-basic'), '--port', 'http'])
  assert.equal(await cli.exited, 1)
  assert.match(cli.stderr(), /config key "server\.port" from flag --port must be an integer from 0 to 65535, got "http"/)
})

test('a directory without routes/ exits 1', async (t) => {
  const cli = runCli(t, [join(ROOT, 'test/fixtures'), '--port', '0'])
  assert.equal(await cli.exited, 1)
  assert.match(cli.stderr(), /no routes\/ directory in .*test\/fixtures/)
  assert.doesNotMatch(cli.stderr(), NO_STACK)
})

test('a Lua syntax error at start-up exits 1 with the message, without a stack', async (t) => {
  const cli = runCli(t, [app('cli-syntax-error'), '--port', '0'])
  assert.equal(await cli.exited, 1)
  assert.match(cli.stderr(), /index\.lua/)
  assert.doesNotMatch(cli.stderr(), NO_STACK)
  assert.equal(cli.stdout(), '')
})

// --- serving -----------------------------------------------------------------------------------

test('serves on --port 0, prints one URL line, and finishes in-flight requests on SIGTERM', async (t) => {
  const cli = await serve(t, [app('cli-basic'), '--port', '0'])
  assert.match(cli.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  assert.notEqual(cli.url, 'http://127.0.0.1:0')
  assert.deepEqual(await get(`${cli.url}/`), { status: 200, body: 'hello' })

  const slow = get(`${cli.url}/slow`)
  await cli.waitFor('stderr', /"url":"\/slow"/)
  cli.child.kill('SIGTERM')
  assert.deepEqual(await slow, { status: 200, body: 'slow done' })
  assert.equal(await cli.exited, 0)
  assert.equal(cli.stdout(), `${cli.url}\n`)
})

test('--workers 2 serves from two processes and exits 0 on SIGTERM', async (t) => {
  const cli = await serve(t, [app('cli-basic'), '--port', '0', '--workers', '2'])
  assert.match(cli.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const replies = await Promise.all(Array.from({ length: 8 }, () => get(`${cli.url}/`)))
  for (const reply of replies) assert.deepEqual(reply, { status: 200, body: 'hello' })
  const pids = new Set([...cli.stderr().matchAll(/"pid":(\d+)/g)].map((m) => m[1]))
  assert.ok(pids.size >= 2, `logs come from both workers: ${[...pids].join(', ')}`)

  const slow = get(`${cli.url}/slow`)
  await cli.waitFor('stderr', /"url":"\/slow"/)
  cli.child.kill('SIGTERM')
  assert.deepEqual(await slow, { status: 200, body: 'slow done' })
  assert.equal(await cli.exited, 0)
  assert.equal(cli.stdout(), `${cli.url}\n`)
})

test('a second signal exits 1 without waiting for in-flight requests', async (t) => {
  const cli = await serve(t, [app('cli-basic'), '--port', '0'])
  const slow = fetch(`${cli.url}/slow`).then((res) => res.text(), (err: unknown) => err)
  await cli.waitFor('stderr', /"url":"\/slow"/)
  const draining = cli.waitFor('stderr', /SIGTERM received: finishing in-flight requests/)
  cli.child.kill('SIGTERM')
  await draining
  cli.child.kill('SIGTERM')
  assert.equal(await cli.exited, 1)
  assert.ok(await slow instanceof Error, 'the slow request was cut off')
})

test('--workers: a worker that dies is replaced', async (t) => {
  const cli = await serve(t, [app('cli-basic'), '--port', '0', '--workers', '2'])
  const workerPid = [...cli.stderr().matchAll(/"pid":(\d+)/g)].map((m) => Number(m[1])).find((pid) => pid !== cli.child.pid)
  assert.ok(workerPid !== undefined, 'a worker logged')
  const replaced = cli.waitFor('stderr', /worker (\d+) is listening/)
  process.kill(workerPid, 'SIGKILL')
  await cli.waitFor('stderr', new RegExp(`worker ${workerPid} died \\(SIGKILL\\); starting another`))
  const [, newPid] = await replaced
  assert.notEqual(Number(newPid), workerPid)
  const replies = await Promise.all(Array.from({ length: 6 }, () => get(`${cli.url}/`)))
  for (const reply of replies) assert.deepEqual(reply, { status: 200, body: 'hello' })
  cli.child.kill('SIGTERM')
  assert.equal(await cli.exited, 0)
})

test('--workers: a start-up error is reported once and exits 1', async (t) => {
  const cli = runCli(t, [app('cli-syntax-error'), '--port', '0', '--workers', '2'])
  assert.equal(await cli.exited, 1)
  assert.equal(cli.stderr().match(/^evluaserver: .*index\.lua/gm)?.length, 1, cli.stderr())
  assert.doesNotMatch(cli.stderr(), NO_STACK)
  assert.equal(cli.stdout(), '')
})

test('--watch restarts on a change under routes/ and keeps serving after a broken edit', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'evlua-watch-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  await cp(app('cli-basic'), dir, { recursive: true })
  const cli = await serve(t, [dir, '--port', '0', '--watch'])
  assert.deepEqual(await get(`${cli.url}/`), { status: 200, body: 'hello' })

  const restarted = cli.waitFor('stderr', /"msg":"restarted"/)
  await writeFile(join(dir, 'routes/index.lua'), 'return { get = function(request) return "changed" end }\n')
  await restarted
  assert.deepEqual(await get(`${cli.url}/`), { status: 200, body: 'changed' }, 'same port after a restart')

  const failed = cli.waitFor('stderr', /"msg":"restart failed, waiting for the next change: [^"]*index\.lua/)
  await writeFile(join(dir, 'routes/index.lua'), 'return { get = function(request) return "oops" end\n')
  await failed
  const fixed = cli.waitFor('stderr', /"msg":"restarted"/)
  await mkdir(join(dir, 'lib'))
  await writeFile(join(dir, 'routes/index.lua'), 'return { get = function(request) return "fixed" end }\n')
  await fixed
  assert.deepEqual(await get(`${cli.url}/`), { status: 200, body: 'fixed' })

  cli.child.kill('SIGTERM')
  assert.equal(await cli.exited, 0)
})

test('https.key and https.cert make it serve HTTPS', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'evlua-https-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  await cp(app('cli-basic'), dir, { recursive: true })
  await mkdir(join(dir, 'config'))
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'config/key.pem'), '-out', join(dir, 'config/cert.pem')
    ])
  } catch {
    t.skip('openssl is not available to make a certificate')
    return
  }
  await writeFile(join(dir, 'config/default.json'), JSON.stringify({ https: { key: 'config/key.pem', cert: 'config/cert.pem' } }))
  const cli = await serve(t, [dir, '--port', '0'])
  assert.match(cli.url, /^https:\/\/127\.0\.0\.1:\d+$/)
  const ca = await readFile(join(dir, 'config/cert.pem'))
  const body = await new Promise<string>((resolve, reject) => {
    request(`${cli.url}/`, { ca }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk }).on('end', () => resolve(text))
    }).on('error', reject).end()
  })
  assert.equal(body, 'hello')
  cli.child.kill('SIGTERM')
  assert.equal(await cli.exited, 0)
})

// --- buildServer -------------------------------------------------------------------------------

test('buildServer maps the http config to Fastify and registers the plugin', async (t) => {
  const { buildServer } = await import('../src/cli/server.ts')
  const { app: server, config } = await buildServer({
    dir: app('cli-basic'),
    env: {},
    config: {
      log: { level: 'silent' },
      http: { body_limit: '1kb', header_size_limit: 4096, connection_timeout_ms: 1000, keep_alive_timeout_ms: 2000, request_timeout_ms: 3000 }
    }
  })
  t.after(() => server.close())
  assert.equal(config.http.body_limit, 1024)
  assert.equal(server.initialConfig.bodyLimit, 1024)
  assert.equal(server.initialConfig.connectionTimeout, 1000)
  assert.equal(server.initialConfig.keepAliveTimeout, 2000)
  assert.equal(server.initialConfig.requestTimeout, 3000)
  assert.equal((server.server as unknown as { maxHeaderSize: number }).maxHeaderSize, 4096)
  const res = await server.inject('/')
  assert.equal(res.statusCode, 200)
  assert.equal(res.body, 'hello')
})

test('buildServer rejects a directory without routes/', async () => {
  const { buildServer } = await import('../src/cli/server.ts')
  await assert.rejects(buildServer({ dir: join(ROOT, 'test/fixtures'), env: {} }), { code: 'EVLUA_ERR_APP_DIR' })
})
