// The test servers themselves: each one starts, does real work, and stops cleanly.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { freePort } from './helpers/ports.ts';
import { startPostgres } from './helpers/postgres.ts';
import { startRedis } from './helpers/redis.ts';
import { startSmtp } from './helpers/smtp.ts';

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('freePort returns a bindable loopback port', async () => {
  const port = await freePort();
  assert.ok(port > 0 && port < 65536);
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('postgres: query, stop (queries fail), start again (queries work)', async (t) => {
  const db = await startPostgres();
  t.after(() => db.destroy());
  assert.match(db.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/evlua_test$/);

  const query = async (sql: string): Promise<pg.QueryResult> => {
    const client = new pg.Client({ connectionString: db.url, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      return await client.query(sql);
    } finally {
      await client.end();
    }
  };

  const one = await query('select 1 as one, current_database() as db');
  assert.deepEqual(one.rows, [{ one: 1, db: 'evlua_test' }]);
  await query('create table kept (v text)');
  await query("insert into kept values ('survives a restart')");

  await db.stop();
  await db.stop(); // a second stop is a no-op
  await assert.rejects(query('select 1'));
  assert.equal(await canConnect(db.port), false);

  await db.start();
  const after = await query('select v from kept');
  assert.deepEqual(after.rows, [{ v: 'survives a restart' }]);

  await db.restart();
  assert.deepEqual((await query('select 2 as two')).rows, [{ two: 2 }]);

  const dir = db.dataDir;
  await db.destroy();
  assert.equal(fs.existsSync(dir), false);
  assert.equal(await canConnect(db.port), false);
});

test('redis: SET then GET', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);

  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  t.after(() => client.disconnect());
  assert.equal(await client.set('greeting', 'hello'), 'OK');
  assert.equal(await client.get('greeting'), 'hello');
  client.disconnect();

  await redis.stop();
  assert.equal(await canConnect(redis.port), false);
});

test('smtp: nodemailer delivers a message that the server records', async (t) => {
  const smtp = await startSmtp();
  t.after(() => smtp.stop());

  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: false,
    ignoreTLS: true,
    auth: { user: 'tester', pass: 'anything' },
  });
  t.after(() => transport.close());

  const next = smtp.nextMessage();
  const info = await transport.sendMail({
    from: 'app@example.test',
    to: 'alice@example.test',
    bcc: 'bob@example.test',
    subject: 'hello from the harness',
    text: 'body text',
    attachments: [{ filename: 'a.bin', content: Buffer.from([0, 1, 2, 255]), contentType: 'application/octet-stream' }],
  });
  assert.deepEqual(info.accepted.sort(), ['alice@example.test', 'bob@example.test']);

  const mail = await next;
  assert.equal(smtp.messages.length, 1);
  assert.equal(mail.from, 'app@example.test');
  assert.deepEqual(mail.to, ['alice@example.test', 'bob@example.test']);
  assert.equal(mail.user, 'tester');
  assert.ok(Buffer.isBuffer(mail.data));
  assert.match(mail.data.toString(), /^Subject: hello from the harness\r?$/m);
  assert.equal(mail.parsed.subject, 'hello from the harness');
  assert.equal(mail.parsed.text?.trim(), 'body text');
  assert.equal(mail.parsed.attachments.length, 1);
  assert.deepEqual([...mail.parsed.attachments[0].content], [0, 1, 2, 255]);

  // A second message, sent before anyone waits for it, is still found.
  await transport.sendMail({ from: 'app@example.test', to: 'carol@example.test', subject: 'second', text: '2' });
  const second = await smtp.nextMessage();
  assert.equal(second.parsed.subject, 'second');
  assert.equal((await smtp.waitForMessages(2)).length, 2);
  await assert.rejects(smtp.nextMessage(50), /message #3 did not arrive within 50 ms/);
});
