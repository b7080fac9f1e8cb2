// A throwaway PostgreSQL server for tests: its own initdb in a temp dir, loopback only, a free port,
// its own unix socket dir, so it never touches (or depends on) a cluster the distribution started.
// As root it runs initdb/pg_ctl as an unprivileged user (initdb refuses to run as root).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './ports.ts';

export interface StartPostgresOptions {
  /** Database created for the tests (default `evlua_test`). */
  database?: string;
  /** Hard upper bound for each of initdb, start and stop, in ms (default 60000). */
  timeoutMs?: number;
  /** Extra postgresql.conf settings, e.g. `{ max_connections: '20' }`. */
  settings?: Record<string, string>;
}

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/evlua_test` */
  url: string;
  port: number;
  host: string;
  user: string;
  database: string;
  /** The data directory (inside a temp dir that destroy() removes). */
  dataDir: string;
  /** Fast shutdown; data is kept so start() can bring the same server back on the same port. */
  stop(): Promise<void>;
  /** Starts a stopped server again (same port, same data) and waits until it accepts queries. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops the server and deletes its temp dir. Safe to call twice. */
  destroy(): Promise<void>;
}

interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

/** Directory holding initdb, pg_ctl and postgres: $EVLUA_PG_BIN, else the highest /usr/lib/postgresql/<ver>/bin. */
export function findPostgresBin(): string {
  const fromEnv = process.env.EVLUA_PG_BIN;
  if (fromEnv) {
    if (!fs.existsSync(path.join(fromEnv, 'initdb'))) {
      throw new Error(`EVLUA_PG_BIN=${fromEnv} has no initdb`);
    }
    return fromEnv;
  }
  const roots = ['/usr/lib/postgresql', '/usr/local/lib/postgresql'];
  const found: { version: number; bin: string }[] = [];
  for (const root of roots) {
    let entries: string[];
    try {
      entries = fs.readdirSync(root);
    } catch {
      continue;
    }
    for (const entry of entries) {
      const bin = path.join(root, entry, 'bin');
      const version = Number.parseFloat(entry);
      if (Number.isFinite(version) && fs.existsSync(path.join(bin, 'initdb'))) {
        found.push({ version, bin });
      }
    }
  }
  found.sort((a, b) => b.version - a.version);
  if (found.length > 0) return found[0].bin;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'pg_ctl'))) return dir;
  }
  throw new Error(
    'PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and PATH); ' +
      'install them with `apt-get install postgresql` (.ci/run does) or set EVLUA_PG_BIN',
  );
}

function lookupUser(name: string): RunAs | undefined {
  let passwd: string;
  try {
    passwd = fs.readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 4) {
      return { name, uid: Number(fields[2]), gid: Number(fields[3]) };
    }
  }
  return undefined;
}

/** As root: the user the postgres binaries run as ($EVLUA_PG_USER, else `postgres`, else `nobody`). */
function unprivilegedUser(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const wanted = process.env.EVLUA_PG_USER;
  const candidates = wanted ? [wanted] : ['postgres', 'nobody'];
  for (const name of candidates) {
    const user = lookupUser(name);
    if (user && user.uid !== 0) return user;
  }
  throw new Error(`running as root and no unprivileged user to run PostgreSQL as (tried ${candidates.join(', ')})`);
}

interface RunResult {
  code: number | null;
  output: string;
}

function run(cmd: string, args: string[], opts: { cwd: string; runAs?: RunAs; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      ...(opts.runAs ? { uid: opts.runAs.uid, gid: opts.runAs.gid } : {}),
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(cmd)} ${args.join(' ')} did not finish within ${opts.timeoutMs} ms\n${output}`));
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function runOk(cmd: string, args: string[], opts: { cwd: string; runAs?: RunAs; timeoutMs: number }): Promise<string> {
  const result = await run(cmd, args, opts);
  if (result.code !== 0) {
    throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited with ${result.code}:\n${result.output}`);
  }
  return result.output;
}

function readLog(file: string): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.length > 4000 ? text.slice(-4000) : text;
  } catch {
    return '(no log)';
  }
}

interface LiveServer {
  bin: string;
  dataDir: string;
  tmpDir: string;
  runAs?: RunAs;
}
const live = new Set<LiveServer>();
let exitHookInstalled = false;

// Last resort when a test file exits without destroy(): immediate shutdown, then remove the dir.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const server of live) {
      if (fs.existsSync(path.join(server.dataDir, 'postmaster.pid'))) {
        spawnSync(path.join(server.bin, 'pg_ctl'), ['stop', '-D', server.dataDir, '-m', 'immediate', '-w', '-t', '10'], {
          cwd: server.tmpDir,
          stdio: 'ignore',
          timeout: 15_000,
          ...(server.runAs ? { uid: server.runAs.uid, gid: server.runAs.gid } : {}),
        });
      }
      try {
        fs.rmSync(server.tmpDir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

/**
 * Starts a fresh PostgreSQL server and creates the test database.
 *
 * @example
 * const db = await startPostgres();
 * t.after(() => db.destroy());
 * const client = new pg.Client({ connectionString: db.url });
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const database = options.database ?? 'evlua_test';
  const timeoutMs = options.timeoutMs ?? 60_000;
  const bin = findPostgresBin();
  const runAs = unprivilegedUser();
  const host = '127.0.0.1';
  const user = 'postgres';

  // When root, the temp dir's parents must be traversable by runAs: use /tmp rather than a private TMPDIR.
  const tmpRoot = runAs ? '/tmp' : os.tmpdir();
  const tmpDir = fs.mkdtempSync(path.join(tmpRoot, 'evlua-pg-'));
  const dataDir = path.join(tmpDir, 'data');
  const logFile = path.join(tmpDir, 'postgres.log');
  if (runAs) fs.chownSync(tmpDir, runAs.uid, runAs.gid);
  const entry: LiveServer = { bin, dataDir, tmpDir, ...(runAs ? { runAs } : {}) };
  live.add(entry);
  installExitHook();

  const opts = { cwd: tmpDir, runAs, timeoutMs };
  let port = 0;
  let running = false;
  let destroyed = false;

  const startServer = async (): Promise<void> => {
    if (destroyed) throw new Error('postgres test server was destroyed');
    if (running) return;
    // -w: pg_ctl returns once the postmaster reports ready (or fails if it exits);
    // -l: the postmaster's output goes to a file, so pg_ctl's pipes close when pg_ctl exits.
    const result = await run(
      path.join(bin, 'pg_ctl'),
      ['start', '-D', dataDir, '-l', logFile, '-w', '-t', String(Math.ceil(timeoutMs / 1000))],
      opts,
    );
    if (result.code !== 0) {
      throw new Error(`pg_ctl start failed (exit ${result.code}):\n${result.output}\n--- server log ---\n${readLog(logFile)}`);
    }
    running = true;
    await waitUntilAccepting(port, host, user, timeoutMs, logFile);
  };

  const stopServer = async (): Promise<void> => {
    if (!running) return;
    const pgCtl = path.join(bin, 'pg_ctl');
    const result = await run(pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', String(Math.ceil(timeoutMs / 1000))], opts);
    // A server that already died (killed by a test) counts as stopped: `pg_ctl status` exits 3.
    if (result.code !== 0 && (await run(pgCtl, ['status', '-D', dataDir], opts)).code !== 3) {
      throw new Error(`pg_ctl stop failed (exit ${result.code}):\n${result.output}\n--- server log ---\n${readLog(logFile)}`);
    }
    running = false;
  };

  try {
    await runOk(
      path.join(bin, 'initdb'),
      ['-D', dataDir, '-U', user, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      opts,
    );
    port = await freePort(host);
    const settings: Record<string, string> = {
      port: String(port),
      listen_addresses: `'${host}'`,
      unix_socket_directories: `'${tmpDir}'`,
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: '100',
      shared_buffers: '32MB',
      ...options.settings,
    };
    const conf = Object.entries(settings)
      .map(([key, value]) => `${key} = ${value}\n`)
      .join('');
    fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), `\n# evlua test harness\n${conf}`);
    await startServer();
    const client = new pg.Client({ host, port, user, database: 'postgres' });
    await client.connect();
    try {
      await client.query(`create database "${database.replaceAll('"', '""')}"`);
    } finally {
      await client.end();
    }
  } catch (err) {
    await stopServer().catch(() => {});
    fs.rmSync(tmpDir, { recursive: true, force: true });
    live.delete(entry);
    throw err;
  }

  return {
    url: `postgres://${user}@${host}:${port}/${encodeURIComponent(database)}`,
    port,
    host,
    user,
    database,
    dataDir,
    stop: stopServer,
    start: startServer,
    async restart() {
      await stopServer();
      await startServer();
    },
    async destroy() {
      if (destroyed) return;
      try {
        await stopServer();
      } finally {
        destroyed = true;
        fs.rmSync(tmpDir, { recursive: true, force: true });
        live.delete(entry);
      }
    },
  };
}

async function waitUntilAccepting(port: number, host: string, user: string, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const client = new pg.Client({ host, port, user, database: 'postgres', connectionTimeoutMillis: 5000 });
    try {
      await client.connect();
      await client.query('select 1');
      await client.end();
      return;
    } catch (err) {
      lastError = err;
      await client.end().catch(() => {});
    }
    if (Date.now() > deadline) {
      throw new Error(
        `postgres on ${host}:${port} did not accept connections within ${timeoutMs} ms: ${String(lastError)}\n` +
          `--- server log ---\n${readLog(logFile)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
