// The per-host connection pool of the dynamic-provider process. Connections are reused by every
// resource, bounded in concurrent channels (OpenSSH's MaxSessions defaults to 10), kept alive, and
// re-established after a drop. Reads are retried after a drop; writes only when idempotent.
import * as fs from "fs";
import { Client, ClientChannel, ConnectConfig } from "ssh2";
import { privateKeyOf } from "./keySource";
import {
  Connection,
  ExecOptions,
  ExecResult,
  expectedFingerprints,
  fingerprintOf,
  hostLabel,
  remoteCommand,
  TransportError,
} from "./ssh";

const MAX_CHANNELS_PER_CONNECTION = 8;
const MIN_CHANNELS_PER_CONNECTION = 2;
const RETRY_DELAYS_MS = [200, 1000];
/** How often a refused channel open is tried again before the host is reported as refusing. */
const CHANNEL_OPEN_ATTEMPTS = 40;
/**
 * Pauses before another handshake when the host accepted the connection but did not finish the
 * handshake in time, or reset it: a busy sshd (forking, or over MaxStartups). Nothing ran yet.
 */
const HANDSHAKE_RETRY_DELAYS_MS = [1000];

/** The handshake timed out or was reset: no session was opened, so trying again is safe. */
class HandshakeNotAnswered extends TransportError {}

class Semaphore {
  private waiting: Array<() => void> = [];
  /** Slots to retire instead of handing back (the host allows fewer channels than we thought). */
  private retiring = 0;
  constructor(
    private free: number,
    private capacity: number,
  ) {}
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    return () => {
      if (this.retiring > 0) {
        this.retiring--;
        return;
      }
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
  /** One slot fewer from now on, down to `floor`; the slot is retired when it is next released. */
  shrink(floor: number): void {
    if (this.capacity - this.retiring <= floor) return;
    this.retiring++;
    this.capacity--;
  }
}

const channelSemaphore = () =>
  new Semaphore(MAX_CHANNELS_PER_CONNECTION, MAX_CHANNELS_PER_CONNECTION);

/**
 * The host refused to open a channel (OpenSSH: MaxSessions reached, "no more sessions" in its
 * log). Nothing ran, the connection is fine: wait and open again, with fewer channels at once.
 */
class ChannelRefused extends Error {}

export interface SessionStats {
  connections: number;
  execs: number;
  retries: number;
  /** Channel opens the host refused (all its sessions busy) and hostnet opened again. */
  refusedChannels: number;
}

export class HostSession {
  readonly label: string;
  readonly stats: SessionStats = {
    connections: 0,
    execs: 0,
    retries: 0,
    refusedChannels: 0,
  };
  /** Fingerprint the host presented on the last successful handshake. */
  presentedFingerprint?: string;
  private client?: Client;
  private connecting?: Promise<Client>;
  private channels = channelSemaphore();

  /** `handshakeRetries`: none for a caller that loops over fresh sessions itself (safe apply). */
  constructor(
    readonly conn: Connection,
    private readonly handshakeRetries = HANDSHAKE_RETRY_DELAYS_MS,
  ) {
    this.label = hostLabel(conn);
  }

  /** Run a shell script on the host (stdin of `sh -s`, through sudo -n when configured). */
  async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.execOnce(script, opts);
      } catch (err) {
        const retriable =
          err instanceof TransportError &&
          opts.idempotent &&
          attempt < RETRY_DELAYS_MS.length;
        if (!retriable) throw err;
        this.stats.retries++;
        this.drop();
        await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt]));
      }
    }
  }

  /**
   * Run a script that keeps its channel open (a lock holder). Resolves once `readyLine` appears
   * on stdout; the script keeps running until the connection closes, which is what releases it.
   */
  async hold(
    script: string,
    readyLine: string,
    what: string,
    onLine?: (line: string) => void,
  ): Promise<void> {
    const client = await this.connect();
    await this.channels.acquire(); // held for the life of the connection, on purpose
    await new Promise<void>((resolve, reject) => {
      client.exec(remoteCommand(this.conn), (err, stream) => {
        if (err)
          return reject(
            new TransportError(
              `${this.label}: could not open a channel to ${what}: ${err.message}`,
              this.label,
            ),
          );
        this.stats.execs++;
        let out = "";
        let errText = "";
        let ready = false;
        stream.on("data", (d: Buffer) => {
          const text = d.toString("utf8");
          out += text;
          for (const line of text.split("\n"))
            if (line && line !== readyLine) onLine?.(line);
          if (!ready && out.split("\n").includes(readyLine)) {
            ready = true;
            resolve();
          }
        });
        stream.stderr.on(
          "data",
          (d: Buffer) => (errText += d.toString("utf8")),
        );
        stream.on("close", () => {
          if (!ready)
            reject(
              new Error(
                `${this.label}: could not ${what}: ${errText.trim() || "the session closed"}`,
              ),
            );
        });
        stream.write(script); // stdin stays open: closing it would release the lock
      });
    });
  }

  /** Close the connection; the next exec reconnects. */
  drop(): void {
    const c = this.client;
    this.client = undefined;
    this.connecting = undefined;
    c?.end();
  }

  private async execOnce(
    script: string,
    opts: ExecOptions,
  ): Promise<ExecResult> {
    for (let refused = 0; ; refused++) {
      const client = await this.connect();
      const channels = this.channels;
      const release = await channels.acquire();
      const started = Date.now();
      let result: ExecResult | undefined;
      try {
        result = await this.runOnChannel(client, script, opts);
        return result;
      } catch (err) {
        if (!(err instanceof ChannelRefused)) throw err;
        // sshd frees a session slot a little after the channel closes on our side, so a burst
        // of short commands can find every slot taken: nothing ran, open again after a pause.
        this.stats.refusedChannels++;
        channels.shrink(MIN_CHANNELS_PER_CONNECTION);
        if (refused + 1 >= CHANNEL_OPEN_ATTEMPTS)
          throw new TransportError(
            `${this.label}: the host refused ${CHANNEL_OPEN_ATTEMPTS} times to open a session to ${opts.what ?? "run a command"} (${err.message}); nothing was run. Check sshd's MaxSessions on the host.`,
            this.label,
          );
      } finally {
        release();
        this.trace(opts.what, started, result);
      }
      await new Promise((r) => setTimeout(r, 25 * Math.min(refused + 1, 8)));
    }
  }

  private runOnChannel(
    client: Client,
    script: string,
    opts: ExecOptions,
  ): Promise<ExecResult> {
    const what = opts.what ?? "run a command";
    const timeoutMs = opts.timeoutMs ?? this.conn.commandTimeoutMs;
    return new Promise((resolve, reject) => {
      const opened = (err: Error | undefined, stream: ClientChannel) => {
        if (err) {
          // ssh2 sets `reason` only on a CHANNEL_OPEN_FAILURE answer from the host.
          const refused = (err as { reason?: unknown }).reason !== undefined;
          const message = `${this.label}: could not open a channel to ${what}: ${err.message}`;
          return reject(
            refused
              ? new ChannelRefused(message)
              : new TransportError(message, this.label),
          );
        }
        this.stats.execs++;
        const out: Buffer[] = [];
        const errs: Buffer[] = [];
        let code: number | undefined;
        const timer = setTimeout(() => {
          stream.close();
          reject(
            new TransportError(
              `${this.label}: timed out after ${timeoutMs} ms while trying to ${what}`,
              this.label,
            ),
          );
        }, timeoutMs);
        stream.on("data", (d: Buffer) => out.push(d));
        stream.stderr.on("data", (d: Buffer) => errs.push(d));
        stream.on("exit", (c: number | null) => (code = c ?? 255));
        stream.on("close", () => {
          clearTimeout(timer);
          if (code === undefined) {
            return reject(
              new TransportError(
                `${this.label}: connection lost while trying to ${what}; the host may have applied part of it`,
                this.label,
              ),
            );
          }
          resolve({
            code,
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(errs).toString("utf8"),
          });
        });
        stream.end(script);
      };
      try {
        client.exec(remoteCommand(this.conn), opened);
      } catch (err) {
        // ssh2 throws when the connection closed under us (another request dropped it): nothing ran.
        reject(
          new TransportError(
            `${this.label}: the connection closed before hostnet could ${what}; nothing was run: ${(err as Error).message}`,
            this.label,
          ),
        );
      }
    });
  }

  private connect(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    if (!this.connecting) {
      this.connecting = this.handshakeRetrying().then(
        (c) => {
          this.client = c;
          this.connecting = undefined;
          return c;
        },
        (e) => {
          this.connecting = undefined;
          throw e;
        },
      );
    }
    return this.connecting;
  }

  private async handshakeRetrying(): Promise<Client> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.handshake();
      } catch (err) {
        const delay = this.handshakeRetries[attempt];
        if (!(err instanceof HandshakeNotAnswered) || delay === undefined)
          throw err;
        this.stats.retries++;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private handshake(): Promise<Client> {
    let privateKey: string | undefined;
    try {
      privateKey = privateKeyOf(this.conn, this.label);
    } catch (err) {
      return Promise.reject(err);
    }
    const expected = expectedFingerprints(this.conn);
    let mismatch: string | undefined;
    const client = new Client();
    const config: ConnectConfig = {
      host: this.conn.host,
      port: this.conn.port,
      username: this.conn.user,
      readyTimeout: this.conn.connectTimeoutMs,
      keepaliveInterval: 5000,
      keepaliveCountMax: 3,
      privateKey,
      passphrase: this.conn.privateKeyPassphrase,
      agent:
        this.conn.agent === true
          ? process.env.SSH_AUTH_SOCK
          : this.conn.agent || undefined,
      hostVerifier: (key: Buffer) => {
        const got = fingerprintOf(key);
        this.presentedFingerprint = got;
        if (expected === "any" || expected.includes(got)) return true;
        mismatch =
          `host key mismatch for ${this.label}: expected ${expected.join(" or ") || "(no entry in known_hosts)"}, ` +
          `the host presented ${got}. Nothing was run. If the host was legitimately re-keyed, update the pinned key.`;
        return false;
      },
    };
    return new Promise((resolve, reject) => {
      client.once("ready", () => {
        this.stats.connections++;
        this.channels = channelSemaphore(); // a new connection has all its channels
        client.on("error", () => undefined); // late errors surface as closed channels
        client.on("close", () => {
          if (this.client === client) this.client = undefined;
        });
        resolve(client);
      });
      // `on`, not `once`: after a handshake timeout ssh2 also reports the socket it closed
      // ("Connection lost before handshake"); a second error with no listener would end the process.
      client.on("error", (err) => {
        const e = err as Error & { level?: string; code?: string };
        const notAnswered =
          !mismatch &&
          (e.level === "client-timeout" || e.code === "ECONNRESET");
        reject(
          new (notAnswered ? HandshakeNotAnswered : TransportError)(
            mismatch ?? `${this.label}: cannot connect: ${err.message}`,
            this.label,
          ),
        );
      });
      client.connect(config);
    });
  }

  /** One line per round trip (started, duration, output size) for benchmarks and post-mortems. */
  private trace(
    what: string | undefined,
    started: number,
    result: ExecResult | undefined,
  ): void {
    const file = process.env.HOSTNET_TRACE_FILE;
    if (!file) return;
    const row = {
      t: started,
      ms: Date.now() - started,
      pid: process.pid,
      host: this.label,
      what: what ?? "",
      conn: this.stats.connections,
      exit: result?.code ?? null,
      outBytes: result ? Buffer.byteLength(result.stdout) : 0,
      code: __dirname,
    };
    fs.appendFileSync(file, JSON.stringify(row) + "\n");
  }
}

const pools = new Map<string, HostSession>();

/** The shared session for this host; a changed key, user or sudo setting gets its own. */
export function sessionFor(conn: Connection): HostSession {
  const key = JSON.stringify([
    conn.user,
    conn.host,
    conn.port,
    conn.sudo,
    conn.hostKey,
    conn.knownHostsFile,
  ]);
  let s = pools.get(key);
  if (!s) {
    s = new HostSession(conn);
    pools.set(key, s);
  }
  return s;
}

export function closeAllSessions(): void {
  for (const s of pools.values()) s.drop();
  pools.clear();
}
