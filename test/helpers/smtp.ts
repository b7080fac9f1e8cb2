// An in-process SMTP server for tests: accepts any sender, any recipient, any AUTH (or none), no TLS,
// and records every message it receives.
import { EventEmitter, once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  /** Envelope MAIL FROM address ('' for the null sender). */
  from: string;
  /** Envelope RCPT TO addresses, in order (bcc recipients appear here, not in the headers). */
  to: string[];
  /** The raw message as received after DATA. */
  data: Buffer;
  /** The message parsed by mailparser: subject, text, html, attachments, headers... */
  parsed: ParsedMail;
  /** The AUTH username, when the client authenticated. */
  user?: string;
}

export interface SmtpServer {
  /** `smtp://127.0.0.1:PORT` */
  url: string;
  port: number;
  host: string;
  /** Every message received so far, in arrival order. */
  messages: ReceivedMail[];
  /**
   * The next message not yet returned by nextMessage() (resolves at once if one is already
   * recorded); rejects after timeoutMs (default 10000) with a clear message.
   */
  nextMessage(timeoutMs?: number): Promise<ReceivedMail>;
  /** Resolves once `messages.length >= count`; rejects after timeoutMs (default 10000). */
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  /** Closes the listener and every open connection. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartSmtpOptions {
  /** When set, AUTH succeeds only with these credentials (default: any credentials are accepted). */
  auth?: { user: string; pass: string };
}

/**
 * Starts an SMTP server on a free loopback port.
 *
 * @example
 * const smtp = await startSmtp();
 * t.after(() => smtp.stop());
 * // ...make the app send a mail to smtp.url...
 * const mail = await smtp.nextMessage();
 * assert.equal(mail.parsed.subject, 'hello');
 */
export async function startSmtp(options: StartSmtpOptions = {}): Promise<SmtpServer> {
  const host = '127.0.0.1';
  const messages: ReceivedMail[] = [];
  const events = new EventEmitter();
  events.setMaxListeners(0);
  let cursor = 0;

  const server = new SMTPServer({
    logger: false,
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    allowInsecureAuth: true,
    disableReverseLookup: true,
    onAuth(auth, _session, callback) {
      const expected = options.auth;
      if (expected && (auth.username !== expected.user || auth.password !== expected.pass)) {
        callback(new Error('Invalid username or password'));
        return;
      }
      callback(null, { user: auth.username ?? 'anonymous' });
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.once('error', (err: Error) => callback(err));
      stream.once('end', () => {
        const data = Buffer.concat(chunks);
        const envelope = session.envelope;
        simpleParser(data).then(
          (parsed) => {
            const mail: ReceivedMail = {
              from: envelope.mailFrom ? envelope.mailFrom.address : '',
              to: envelope.rcptTo.map((r) => r.address),
              data,
              parsed,
              ...(typeof session.user === 'string' ? { user: session.user } : {}),
            };
            messages.push(mail);
            events.emit('message', mail);
            callback();
          },
          (err: Error) => callback(err),
        );
      });
    },
  });
  server.on('error', (err: Error) => events.emit('server-error', err));

  server.listen(0, host);
  await once(server.server, 'listening');
  const port = (server.server.address() as AddressInfo).port;

  const waitFor = (ready: () => boolean, timeoutMs: number, what: string): Promise<void> =>
    new Promise((resolve, reject) => {
      if (ready()) {
        resolve();
        return;
      }
      const onMessage = (): void => {
        if (ready()) {
          cleanup();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`SMTP test server on port ${port}: ${what} within ${timeoutMs} ms (${messages.length} received)`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        events.off('message', onMessage);
      };
      events.on('message', onMessage);
    });

  let stopped: Promise<void> | undefined;

  return {
    url: `smtp://${host}:${port}`,
    port,
    host,
    messages,
    async nextMessage(timeoutMs = 10_000) {
      const index = cursor++;
      try {
        await waitFor(() => messages.length > index, timeoutMs, `message #${index + 1} did not arrive`);
      } catch (err) {
        cursor--;
        throw err;
      }
      return messages[index];
    },
    async waitForMessages(count, timeoutMs = 10_000) {
      await waitFor(() => messages.length >= count, timeoutMs, `${count} message(s) did not arrive`);
      return messages.slice(0, count);
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // smtp-server waits for open connections before closing; end them now.
        for (const connection of server.connections) connection.close();
      });
      return stopped;
    },
  };
}
