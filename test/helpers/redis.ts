// A throwaway redis-server for tests: a child process on a free loopback port, no persistence,
// its working dir in a temp dir that stop() removes.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';

export interface StartRedisOptions {
  /** Hard upper bound for start and stop, in ms (default 30000). */
  timeoutMs?: number;
  /** Extra redis-server arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[];
}

export interface RedisServer {
  /** `redis://127.0.0.1:PORT` */
  url: string;
  port: number;
  host: string;
  /** Kills the server, waits for it to exit, removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** $EVLUA_REDIS_SERVER, else redis-server from PATH or /usr/bin, /usr/sbin, /usr/local/bin. */
export function findRedisServer(): string {
  const fromEnv = process.env.EVLUA_REDIS_SERVER;
  if (fromEnv) return fromEnv;
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin'];
  for (const dir of dirs) {
    if (dir && fs.existsSync(path.join(dir, 'redis-server'))) return path.join(dir, 'redis-server');
  }
  throw new Error('redis-server not found; install it with `apt-get install redis-server` (.ci/run does) or set EVLUA_REDIS_SERVER');
}

const live = new Set<{ child: ChildProcess; tmpDir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const server of live) {
      server.child.kill('SIGKILL');
      try {
        fs.rmSync(server.tmpDir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

/**
 * Starts redis-server and resolves once it answers PING.
 *
 * @example
 * const redis = await startRedis();
 * t.after(() => redis.stop());
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const binary = findRedisServer();
  const host = '127.0.0.1';
  const port = await freePort(host);
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'evlua-redis-'));
  const child = spawn(
    binary,
    [
      '--port', String(port),
      '--bind', host,
      '--save', '',
      '--appendonly', 'no',
      '--dir', tmpDir,
      '--daemonize', 'no',
      '--logfile', '',
      ...(options.args ?? []),
    ],
    { cwd: tmpDir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const entry = { child, tmpDir };
  live.add(entry);
  installExitHook();

  let log = '';
  const onOutput = (chunk: Buffer): void => {
    log += chunk.toString();
    if (log.length > 8000) log = log.slice(-4000);
  };
  child.stdout?.on('data', onOutput);
  child.stderr?.on('data', onOutput);
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });

  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exitedPromise;
      clearTimeout(timer);
    }
    fs.rmSync(tmpDir, { recursive: true, force: true });
    live.delete(entry);
  };

  try {
    // Ready means: the server logs that it accepts connections, then a real PING gets PONG.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`redis-server on ${host}:${port} did not become ready within ${timeoutMs} ms\n${log}`));
      }, timeoutMs);
      const onData = (): void => {
        if (/ready to accept connections/i.test(log)) {
          cleanup();
          resolve();
        }
      };
      const onExit = (code: number | null, signal: string | null): void => {
        cleanup();
        reject(new Error(`redis-server exited early (code ${code}, signal ${signal})\n${log}`));
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onError);
      };
      child.stdout?.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onError);
      onData();
    });
    const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await client.connect();
      const pong = await client.ping();
      if (pong !== 'PONG') throw new Error(`redis-server answered PING with ${pong}`);
    } finally {
      client.disconnect();
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return { url: `redis://${host}:${port}`, port, host, stop };
}
