// A host as the resources see it: a coalescing write queue, a cached one-round-trip snapshot of
// its whole network state, and its identity. Resources never open connections or build shell
// strings themselves; they hand typed operations to this layer.
import {
  attributeResults,
  buildFlushScript,
  describeCommand,
  HostOp,
  HostOpError,
} from "./hostQueue";
import { HostSnapshot, parseSnapshot, ROOT_NS, snapshotScript } from "../state";
import {
  Connection,
  ConnectionInput,
  HostSession,
  sessionFor,
} from "../transport";
import { parseOrThrow } from "../schema";
import { engineWarn } from "./engineLog";
import { hostLockScript, LOCK_READY } from "./hostLock";

const MAX_ATTEMPTS = 4;
const COALESCE_WINDOW_MS = Number(process.env.HOSTNET_COALESCE_MS ?? 3);
/**
 * Flushes in flight per host at once. A flush only carries ops whose resources the engine runs
 * concurrently (independent ones), and a resource awaits each op before queuing the next, so a
 * second flush never holds an op that depends on one still running in the first: resources whose
 * ops arrive while one flush runs need not wait for it to end.
 */
const MAX_FLUSHES_IN_FLIGHT = 2;
/**
 * Scoped reads in flight per host at once. Readers that arrive while these run wait and share the
 * next read; with one only, a resource waited for a whole read it had no part in before its own
 * began, twice per create (find, then plan), and the reads, not the writes, set the pace of `up`.
 */
const MAX_SCOPED_READS_IN_FLIGHT = 2;

interface Pending {
  op: HostOp;
  isolate: boolean;
  attempts: number;
  resolve: (output: string) => void;
  reject: (err: Error) => void;
}

export interface HostIdentity {
  machineId: string;
  hostname: string;
  hostKeyFingerprint: string;
}

/** machine-id → the Host of this process that holds (or is taking) that machine's lock. */
const LOCK_HOLDERS = new Map<string, Host>();

/** The scope of a snapshot that covers these namespaces (undefined and "" are the root, always read). */
export function scopeOf(...netns: Array<string | undefined>): string[] {
  return netns.filter((n): n is string => n !== undefined && n !== ROOT_NS);
}

export class Host {
  private pending: Pending[] = [];
  private timer?: NodeJS.Timeout;
  private flushesInFlight = 0;
  private snapshotCache?: Promise<HostSnapshot>;
  private scopedCache?: HostSnapshot;
  private scopedWanted = new Set<string>();
  private scopedWaiters: Array<{
    resolve: (s: HostSnapshot) => void;
    reject: (e: Error) => void;
  }> = [];
  private scopedTimer?: NodeJS.Timeout;
  private scopedInFlight = 0;
  private writeEpoch = 0;
  private identityCache?: Promise<HostIdentity>;
  private lock?: Promise<void>;
  private lockConnection = -1;

  constructor(readonly session: HostSession) {}

  get label(): string {
    return this.session.label;
  }

  /** Queue one operation; it runs in the next round trip together with everything queued beside it. */
  run(op: HostOp): Promise<string> {
    return new Promise((resolve, reject) => {
      this.pending.push({ op, isolate: false, attempts: 0, resolve, reject });
      this.schedule();
    });
  }

  /**
   * The network state of the host, one round trip, cached until the next write. Without a scope:
   * root and every namespace. With one: root and just those named namespaces (absent ones are
   * listed in `absent`), which is what a resource needs for its own objects; on a host with 300
   * VM namespaces that is milliseconds instead of seconds, and it is paid after every write.
   * Scoped readers that arrive together share one read of the union of their namespaces.
   */
  snapshot(scope?: readonly string[]): Promise<HostSnapshot> {
    if (scope === undefined || this.snapshotCache) return this.fullSnapshot();
    const wanted = [...new Set(scope.filter((n) => n !== ROOT_NS))];
    const cached = this.fromScopedCache(wanted);
    if (cached) return Promise.resolve(cached);
    return new Promise((resolve, reject) => {
      for (const n of wanted) this.scopedWanted.add(n);
      this.scopedWaiters.push({ resolve, reject });
      this.scheduleScoped();
    });
  }

  /**
   * At most MAX_SCOPED_READS_IN_FLIGHT scoped reads per host at a time: readers that arrive
   * meanwhile wait and share the next read (which starts after they asked, so it sees every write
   * they heard back from). Each read forks a dozen tools per namespace on the host, so reads are
   * shared, not multiplied per reader.
   */
  private scheduleScoped(): void {
    if (
      this.scopedTimer ||
      this.scopedInFlight >= MAX_SCOPED_READS_IN_FLIGHT ||
      this.scopedWaiters.length === 0
    )
      return;
    this.scopedTimer = setTimeout(
      () => void this.readScoped(),
      COALESCE_WINDOW_MS,
    );
  }

  private fullSnapshot(): Promise<HostSnapshot> {
    if (!this.snapshotCache) {
      const p = this.readSnapshot(undefined);
      p.catch(() => {
        if (this.snapshotCache === p) this.snapshotCache = undefined;
      });
      this.snapshotCache = p;
    }
    return this.snapshotCache;
  }

  private async readSnapshot(
    namespaces: readonly string[] | undefined,
  ): Promise<HostSnapshot> {
    const what = namespaces
      ? `read the network state of ${namespaces.length} namespace(s)`
      : "read the network state";
    const r = await this.session.exec(snapshotScript({ namespaces }), {
      idempotent: true,
      what,
    });
    if (r.code !== 0)
      throw new Error(
        `${this.label}: reading the network state failed (exit ${r.code}): ${r.stderr.trim()}`,
      );
    return parseSnapshot(r.stdout);
  }

  /** Root plus `wanted`, if an earlier scoped read since the last write already holds them all. */
  private fromScopedCache(wanted: readonly string[]): HostSnapshot | undefined {
    const c = this.scopedCache;
    if (
      !c ||
      !wanted.every(
        (n) => c.namespaces[n] !== undefined || c.absent.includes(n),
      )
    )
      return undefined;
    return {
      machineId: c.machineId,
      hostname: c.hostname,
      namespaces: Object.fromEntries(
        [ROOT_NS, ...wanted].flatMap((n) =>
          c.namespaces[n] ? [[n, c.namespaces[n]]] : [],
        ),
      ),
      absent: wanted.filter((n) => c.absent.includes(n)),
    };
  }

  private async readScoped(): Promise<void> {
    const waiters = this.scopedWaiters;
    const namespaces = [...this.scopedWanted];
    this.scopedWaiters = [];
    this.scopedWanted = new Set();
    this.scopedTimer = undefined;
    this.scopedInFlight++;
    const epoch = this.writeEpoch;
    try {
      const snap = await this.readSnapshot(namespaces);
      // Only what no write has overtaken may serve later readers.
      if (epoch === this.writeEpoch) this.remember(snap);
      for (const w of waiters) w.resolve(snap);
    } catch (err) {
      for (const w of waiters) w.reject(err as Error);
    } finally {
      this.scopedInFlight--;
      this.scheduleScoped();
    }
  }

  private remember(snap: HostSnapshot): void {
    const c = this.scopedCache;
    this.scopedCache = c
      ? {
          ...snap,
          namespaces: { ...c.namespaces, ...snap.namespaces },
          absent: [...new Set([...c.absent, ...snap.absent])],
        }
      : snap;
  }

  invalidate(): void {
    this.snapshotCache = undefined;
    this.scopedCache = undefined;
    this.writeEpoch++;
  }

  /** machine-id and hostname of whatever answers at this address, read once per process. */
  identity(): Promise<HostIdentity> {
    if (!this.identityCache) {
      this.identityCache = this.session
        .exec("cat /etc/machine-id; hostname\n", {
          idempotent: true,
          what: "read the host identity",
        })
        .then((r) => {
          const [machineId = "", hostname = ""] = r.stdout.trim().split("\n");
          if (r.code !== 0 || !/^[0-9a-f]{32}$/.test(machineId)) {
            throw new Error(
              `${this.label}: cannot read /etc/machine-id (exit ${r.code}): ${r.stderr.trim()}`,
            );
          }
          return {
            machineId,
            hostname: hostname.trim(),
            hostKeyFingerprint: this.session.presentedFingerprint ?? "",
          };
        });
      this.identityCache.catch(() => (this.identityCache = undefined));
    }
    return this.identityCache;
  }

  /** Run a read-only script directly (not coalesced); retried after a dropped connection. */
  async read(script: string, what: string): Promise<string> {
    const r = await this.session.exec(script, { idempotent: true, what });
    if (r.code !== 0)
      throw new Error(
        `${this.label}: could not ${what} (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
      );
    return r.stdout;
  }

  private schedule(): void {
    if (this.timer || this.flushesInFlight >= MAX_FLUSHES_IN_FLIGHT) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, COALESCE_WINDOW_MS);
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    this.flushesInFlight++;
    try {
      await this.flushBatch(batch);
    } finally {
      this.flushesInFlight--;
      this.invalidate();
      if (this.pending.length > 0) this.schedule();
    }
  }

  /**
   * Writers to one host serialize on a host-side lock (flock under /run/hostnet), held from this
   * process's first write until its connection closes, so two deployments never interleave.
   * Within one process the lock is per machine, not per connection: a deployment that reaches the
   * same host as root and as a sudo user must not wait on itself.
   */
  async ensureLocked(): Promise<void> {
    if (process.env.HOSTNET_HOST_LOCK === "off") return;
    if (this.holdsLock()) return this.lock;
    const { machineId } = await this.identity();
    const holder = LOCK_HOLDERS.get(machineId);
    if (holder && holder !== this && holder.holdsLock()) return holder.lock;
    if (this.holdsLock()) return this.lock; // taken by a concurrent caller while identity was read
    const owner = `${process.env.HOSTNET_LOCK_OWNER ?? "hostnet"} (pid ${process.pid} on ${require("os").hostname()})`;
    const lock = this.session.hold(
      hostLockScript(owner),
      LOCK_READY,
      "take the hostnet lock",
      (line) => {
        if (line.startsWith("BUSY"))
          engineWarn(
            `${this.label}: waiting for the hostnet lock, held by ${line.slice(5) || "another run"} (up to 15 min)`,
          );
      },
    );
    this.lock = lock;
    this.lockConnection = this.session.stats.connections; // identity() above connected; a reconnect updates it below
    LOCK_HOLDERS.set(machineId, this);
    lock.then(
      () => (this.lockConnection = this.session.stats.connections),
      () => {
        if (this.lock === lock) this.lock = undefined;
      },
    );
    return lock;
  }

  /** Whether this Host's lock (taken or being taken) lives on its current connection. */
  private holdsLock(): boolean {
    return (
      this.lock !== undefined &&
      this.lockConnection === this.session.stats.connections
    );
  }

  private async flushBatch(batch: Pending[]): Promise<void> {
    const ops = batch.map((p) => p.op);
    const isolate = new Set(batch.flatMap((p, i) => (p.isolate ? [i] : [])));
    const plan = buildFlushScript(ops, isolate);
    let stdout: string;
    try {
      await this.ensureLocked();
      const r = await this.session.exec(plan.script, {
        what: `apply ${ops.length} change(s)`,
      });
      stdout = r.stdout;
    } catch (err) {
      this.invalidate();
      // Transport failure: the host may have applied some of it. Do not retry writes blindly;
      // every op fails with the transport error and refresh tells the truth.
      for (const p of batch) p.reject(err as Error);
      return;
    }
    // Before any caller hears back: one that reads the snapshot right after its write must see it.
    this.invalidate();
    const outcomes = attributeResults(plan, stdout);
    batch.forEach((p, i) => {
      const o = outcomes[i];
      if (o.status === "ok") p.resolve(o.output);
      else if (o.status === "failed")
        p.reject(
          new HostOpError(this.label, p.op, describeCommand(p.op), o.output),
        );
      else if (p.attempts >= MAX_ATTEMPTS)
        p.reject(
          new HostOpError(
            this.label,
            p.op,
            describeCommand(p.op),
            "gave up: the host never ran this operation",
          ),
        );
      else
        this.pending.push({
          ...p,
          isolate: o.isolate,
          attempts: p.attempts + 1,
        });
    });
  }
}

const hosts = new Map<string, Host>();

/** The shared Host for a connection input (validated here too: check() may have been bypassed). */
export function hostFor(input: ConnectionInput | Connection): Host {
  const conn = parseOrThrow(Connection, input, "connection");
  const session = sessionFor(conn);
  let h = hosts.get(session.label + JSON.stringify([conn.sudo, conn.hostKey]));
  if (!h || h.session !== session) {
    h = new Host(session);
    hosts.set(session.label + JSON.stringify([conn.sudo, conn.hostKey]), h);
  }
  return h;
}
