// The generic lifecycle every hostnet resource shares, loaded by the serialized provider stub
// (dynamic.ts) inside the dynamic-provider process. Desired and live state are compared as data:
// the same comparison drives diff, refresh and drift reports.
import { hostFor, Host } from "../host";
import { KindContext, ResourceKind } from "../kinds/kind";
import { configureStack, StackConfigView, TransportError } from "../transport";
import {
  comparedKeys,
  connectionIdentity,
  connectionOf,
  containsUnknown,
  definedOnly,
  fullSchema,
  kindOf,
  onlyKeySourceChanged,
  parseProps,
  Props,
  same,
  strip,
} from "./props";

export { check } from "./check";

/** The engine's stack configuration for this provider process: where privateKeyConfig keys are found. */
export function configure(config: StackConfigView): void {
  configureStack(config);
}

/**
 * A provider whose engine died without telling it (killed by SIGKILL, a cancelled CI job) would keep
 * its SSH sessions, and with them the host locks it holds, until someone found and killed it; every
 * later run on those hosts would wait 15 minutes and fail. It leaves when it is orphaned.
 */
function leaveWhenOrphaned(): void {
  if (!process.argv.some((a) => a.includes("dynamic-provider"))) return; // imported by tests or tools
  const engine = process.ppid;
  setInterval(() => {
    if (process.ppid !== engine) process.exit(70);
  }, 1000).unref();
}
leaveWhenOrphaned();

export async function diff(
  kindName: string,
  _id: string,
  olds: Props,
  news: Props,
) {
  const kind = kindOf(kindName);
  const changes: string[] = [];
  const replaces: string[] = [];
  for (const key of comparedKeys(kind)) {
    if (same(olds[key], news[key])) continue;
    changes.push(key);
    if ((kind.replaceOn as string[]).includes(key)) replaces.push(key);
  }
  for (const key of kind.replaces?.(olds, news) ?? []) {
    if (!replaces.includes(key)) replaces.push(key);
    if (!changes.includes(key)) changes.push(key);
  }
  if (
    !same(
      connectionIdentity(olds.connection),
      connectionIdentity(news.connection),
    )
  )
    replaces.push("connection");
  if (
    !same(olds.connection, news.connection) &&
    !changes.includes("connection")
  )
    changes.push("connection");
  if (!same(olds.credentials, news.credentials)) changes.push("credentials");
  if (kind.outdated && changes.length === 0 && !containsUnknown(news))
    changes.push(...kind.outdated(parseProps(kind, news), olds));
  if (
    kind.recheck &&
    changes.length === 0 &&
    replaces.length === 0 &&
    !containsUnknown(news)
  )
    changes.push(...(await recheckLive(kind, olds, news)));
  return {
    changes: changes.length > 0 || replaces.length > 0,
    replaces,
    // Kernel names are unique per namespace: the old object must go before its replacement comes.
    deleteBeforeReplace: replaces.length > 0,
  };
}

/** The kind's live re-check; a host that cannot be asked counts as changed, so `update` reports why. */
async function recheckLive(
  kind: ResourceKind,
  olds: Props,
  news: Props,
): Promise<string[]> {
  try {
    const n = parseProps(kind, news);
    return await kind.recheck!(
      await contextFor(n, olds.machineId, kind.hostless),
      n,
      olds,
    );
  } catch {
    return ["(recheck failed)"];
  }
}

async function contextFor(
  props: Props,
  expectMachineId?: string,
  hostless = false,
): Promise<KindContext> {
  if (hostless) return { host: undefined as unknown as Host };
  const owner =
    typeof props.ownerToken === "string" ? props.ownerToken : undefined;
  const host: Host = hostFor(connectionOf(props) as any);
  const who = await host.identity();
  if (expectMachineId && who.machineId !== expectMachineId) {
    throw new Error(
      `${host.label} now answers as machine ${who.machineId} (hostname ${who.hostname}), but this resource lives on machine ` +
        `${expectMachineId}. Nothing was changed. If the address moved to another machine, fix the connection; if the ` +
        `host was reinstalled, remove the resource from state (pulumi state delete) and adopt or recreate it.`,
    );
  }
  return { host, owner };
}

export async function create(kindName: string, inputs: Props) {
  const kind = kindOf(kindName);
  const p = parseProps(kind, inputs);
  const ctx = await contextFor(p, undefined, kind.hostless);
  const machineId = kind.hostless
    ? undefined
    : (await ctx.host.identity()).machineId;
  if (p.adopt) {
    const live = await kind.read(ctx, p);
    if (!live)
      throw new Error(
        `${ctx.host.label}: cannot adopt ${kind.type} ${kind.id(p)}: it does not exist on the host`,
      );
    return {
      id: kind.id(p),
      outs: definedOnly({ ...inputs, ...live, machineId, created: false }),
    };
  }
  const leftover = await adoptOwnLeftover(kind, ctx, inputs, p);
  if (leftover)
    return {
      id: kind.id(p),
      outs: definedOnly({
        ...inputs,
        ...p,
        ...leftover,
        machineId,
        created: true,
      }),
    };
  try {
    const extra = await kind.create(ctx, p);
    return {
      id: kind.id(p),
      outs: definedOnly({
        ...inputs,
        ...p,
        ...extra,
        machineId,
        created: true,
      }),
    };
  } catch (err) {
    if (!cutOff(err)) throw err;
    throw interruptedCreate(
      kind,
      ctx,
      p,
      definedOnly({ ...inputs, ...p, machineId, created: true }),
      err as Error,
    );
  }
}

/**
 * Create = plan against what is there. With per-step checkpoints off, an engine killed mid-`up`
 * forgets objects the host already holds. One that carries this resource's own mark was made by
 * such a run: take it as it is and converge it to the inputs (it counts as created by hostnet).
 * Anything else found there is left to the kind's create, which refuses it with the adopt message.
 * Returns the extra outputs, or undefined when there is no own leftover.
 */
async function adoptOwnLeftover(
  kind: ResourceKind,
  ctx: KindContext,
  inputs: Props,
  p: any,
): Promise<Record<string, unknown> | undefined> {
  if (!kind.find || ctx.owner === undefined) return undefined;
  const finding = await kind.find(ctx, p);
  if (!finding.present || finding.verdict !== "mine") return undefined;
  const live = await kind.read(ctx, p);
  const olds = live
    ? fullSchema(kind).safeParse(strip({ ...inputs, ...p, ...live }))
    : undefined;
  if (!olds?.success) return undefined; // not readable as this kind: create reports what is in the way
  return kind.converge
    ? kind.converge(ctx, olds.data, p)
    : kind.update(ctx, olds.data, p);
}

/** The session broke while changes were in flight: the host may have applied some of them. */
function cutOff(err: unknown): boolean {
  if (
    err instanceof TransportError ||
    (err as Error)?.name === "TransportError"
  )
    return true;
  // Kinds that wrap a failed undo keep the transport's words.
  return /connection lost while trying to|: cannot connect: |timed out after \d+ ms while trying to/.test(
    String((err as Error)?.message ?? err),
  );
}

/**
 * A create cut off mid-way may have left the object on the host, maybe half-made, and the undo
 * could not run or could not be trusted. Throwing an initialization failure (error with `id` and
 * `properties`) makes the engine record the resource anyway: the next refresh reads what is
 * really there (dropping it if it is absent) and the next `up` repairs it, instead of a create
 * tripping over an unmanaged leftover that nobody would clean up.
 */
function interruptedCreate(
  kind: ResourceKind,
  ctx: KindContext,
  p: any,
  outs: Props,
  err: Error,
): Error {
  const id = kind.id(p);
  const message =
    `${err.message}\n  ${ctx.host.label}: the connection was lost while creating ${kind.type} ${id}; it may exist on the host, ` +
    `complete or half-made. hostnet recorded it in the state as unfinished: run \`pulumi up --refresh\` when the host ` +
    `answers again, which reads what is really there and finishes or recreates it.`;
  return Object.assign(new Error(message), {
    id,
    properties: outs,
    reasons: [message],
  });
}

export async function read(kindName: string, id: string, props: Props) {
  const kind = kindOf(kindName);
  const p = parseProps(kind, props);
  const ctx = await contextFor(p, props.machineId, kind.hostless);
  // A refresh reads every resource at once: one read of the whole host serves them all (the
  // kinds' scoped reads are answered from it), so round trips do not grow with the resource count.
  if (!kind.hostless) await ctx.host.snapshot();
  const live = await kind.read(ctx, p);
  if (!live) return { id: "", props: {} }; // gone: refresh drops it, the next up recreates it
  return { id, props: definedOnly({ ...props, ...live }) };
}

export async function update(
  kindName: string,
  _id: string,
  olds: Props,
  news: Props,
) {
  const kind = kindOf(kindName);
  const o = parseProps(kind, olds);
  const n = parseProps(kind, news);
  if (onlyKeySourceChanged(kind, olds, news)) {
    // Only the key source changed (e.g. a state from before key references): nothing to do on
    // the host; the outputs take the new connection and drop the old stored key.
    const outs: Props = {
      ...olds,
      ...news,
      ...n,
      machineId: olds.machineId,
      created: olds.created,
    };
    if (news.credentials === undefined) delete outs.credentials;
    return { outs: definedOnly(outs) };
  }
  const ctx = await contextFor(n, olds.machineId, kind.hostless);
  const extra = await kind.update(ctx, o, n);
  return {
    outs: definedOnly({
      ...news,
      ...n,
      ...extra,
      machineId: olds.machineId,
      created: olds.created,
    }),
  };
}

export async function remove(kindName: string, _id: string, props: Props) {
  const kind = kindOf(kindName);
  const p = parseProps(kind, props);
  const ctx = await contextFor(p, props.machineId, kind.hostless);
  if (props.created === false) await kind.release?.(ctx, p);
  else await kind.delete(ctx, p);
}
