// Pulumi dynamic-provider glue. The provider object is serialized into the stack state and run
// later by `refresh`/`destroy`, possibly from another checkout path or machine (a GitOps runner).
// So the serialized stub carries no hostnet code at all: each method loads the hostnet runtime of
// the checkout that is running the engine (HOSTNET_HOME, set by our launcher) and dispatches by kind.
import * as pulumi from "@pulumi/pulumi";
import type { ConnectionInput } from "../transport";
import { ownerToken } from "../state";

function hostnetRuntime(): any {
  const path = require("path");
  const home = process.env.HOSTNET_HOME || process.cwd();
  return require(path.join(home, "dist", "providers", "runtime.js"));
}

/** Frames (file URIs) that say nothing about where a resource was declared. */
const UNINFORMATIVE_FRAME =
  /\/node_modules\/@pulumi\/|\/providers\/kinds\/dynamic\.[jt]s$/;

function frameUri(frame: unknown): string {
  return String((frame as { uri?: unknown } | undefined)?.uri);
}

/**
 * The SDK sends the engine the whole JavaScript call stack of every resource it registers, and the
 * engine stores it in the state: about 580 bytes per resource, 16% of a hostnet resource's state, for
 * frames of mocha, the Automation API and hostnet's own components that nobody reads. Keep the first
 * frame (the source position the engine shows in diagnostics) and drop the rest; a hostnet
 * resource's first frame is always this file's (or the SDK's) constructor line, which says nothing,
 * so it goes too (and with it the copy the engine stores as sourcePosition). The SDK version is
 * pinned exactly, and this private hook is checked before it is wrapped.
 */
function trimRecordedStackTraces(): void {
  const resource = pulumi.Resource as unknown as {
    stackTrace?: (skip: number) => unknown[];
    __hostnetTrimmed?: boolean;
  };
  const original = resource.stackTrace;
  if (typeof original !== "function" || resource.__hostnetTrimmed) return;
  resource.stackTrace = (skip: number) =>
    original
      .call(pulumi.Resource, skip)
      .slice(0, 1)
      .filter((f) => !UNINFORMATIVE_FRAME.test(frameUri(f)));
  resource.__hostnetTrimmed = true;
}
trimRecordedStackTraces();

/**
 * The provider of a kind as a module of the installed `hostnet-provider` package (providers/stub):
 * Pulumi serializes such a module as a one-line `require`, about 250 bytes in state instead of the
 * 2.6 KB of a closure, stored twice per resource. Undefined for a kind that has no module there.
 */
function installedStub(
  kind: string,
): pulumi.dynamic.ResourceProvider | undefined {
  try {
    return require(`hostnet-provider/${kind}.js`);
  } catch {
    return undefined;
  }
}

/**
 * One stub object per kind, shared by every resource of that kind: the SDK caches a provider's
 * serialized form by object identity, and serializing it (closure capture through the V8 inspector)
 * is the program's largest CPU cost — paid once per kind instead of once per resource.
 */
const stubs = new Map<string, pulumi.dynamic.ResourceProvider>();

export function providerStub(kind: string): pulumi.dynamic.ResourceProvider {
  let stub = stubs.get(kind);
  if (!stub) {
    stub = installedStub(kind) ?? {
      configure: async (req: pulumi.dynamic.ConfigureRequest) =>
        hostnetRuntime().configure?.(req.config),
      check: (olds: any, news: any) => hostnetRuntime().check(kind, olds, news),
      diff: (id: string, olds: any, news: any) =>
        hostnetRuntime().diff(kind, id, olds, news),
      create: (inputs: any) => hostnetRuntime().create(kind, inputs),
      read: (id: string, props: any) => hostnetRuntime().read(kind, id, props),
      update: (id: string, olds: any, news: any) =>
        hostnetRuntime().update(kind, id, olds, news),
      delete: (id: string, props: any) =>
        hostnetRuntime().remove(kind, id, props),
    };
    stubs.set(kind, stub);
  }
  return stub;
}

/**
 * A resource's `__provider` as the SDK's dynamic-provider process loads it:
 * `requireFromString(text).handler()` must return the provider. A kind with a module in
 * `hostnet-provider` gets a one-line `require` of it written here (about 70 bytes; the SDK's own
 * serialization of the same `require` wraps it in 220). The type token stays the dynamic
 * provider's (pulumi-nodejs:dynamic/hostnet:<kind>), so URNs are the ones pulumi.dynamic.Resource made.
 */
const providerTexts = new Map<string, Promise<string>>();

function providerText(kind: string): Promise<string> {
  let text = providerTexts.get(kind);
  if (!text) {
    const stub = providerStub(kind);
    text = installedStub(kind)
      ? Promise.resolve(
          `exports.handler = () => require(${JSON.stringify(`hostnet-provider/${kind}.js`)});\n`,
        )
      : pulumi.runtime
          .serializeFunction(() => stub, { allowSecrets: false })
          .then((f) => f.text);
    providerTexts.set(kind, text);
  }
  return text;
}

/** A custom resource served by hostnet's dynamic provider of `kind`. */
abstract class DynamicResource extends pulumi.CustomResource {
  protected constructor(
    kind: string,
    name: string,
    props: Record<string, unknown>,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      `pulumi-nodejs:dynamic/hostnet:${kind}`,
      name,
      { ...props, __provider: pulumi.output(providerText(kind)) },
      opts,
    );
  }
}

/** pulumi.Input on every top-level property. */
export type Inputs<T> = { [K in keyof T]: pulumi.Input<T[K]> };

/**
 * The output properties of a resource class, from its kind's zod schema (never a second list).
 * Declared by merging an interface into the class:
 *   export interface VmNetns extends Outputs<VmNetnsProps> {}
 *   export class VmNetns extends HostnetResource { ... }
 */
export type Outputs<T> = { readonly [K in keyof T]-?: pulumi.Output<T[K]> };

/** Every hostnet resource takes a connection; its private key travels as a separate secret. */
export interface CommonArgs {
  connection: pulumi.Input<ConnectionInput>;
  /** Adopt an object that already exists (hostnet's import; see README): nothing is changed. */
  adopt?: pulumi.Input<boolean>;
}

const SECRET_FIELDS = ["privateKey", "privateKeyPassphrase"] as const;

function splitConnection(conn: pulumi.Input<ConnectionInput>): {
  connection: pulumi.Output<unknown>;
  credentials: pulumi.Output<unknown>;
} {
  const all = pulumi.output(conn);
  const publicPart = all.apply((c) => {
    const rest: Record<string, unknown> = { ...(c as Record<string, unknown>) };
    for (const f of SECRET_FIELDS) delete rest[f];
    return rest;
  });
  // Stored (encrypted) with every resource, so only when the key text itself was given: a key
  // reference (privateKeyFile, privateKeyConfig) or an agent leaves no credentials in state.
  const credentials = all.apply((c) => {
    const out: Record<string, unknown> = {};
    for (const f of SECRET_FIELDS)
      if ((c as Record<string, unknown>)[f] !== undefined)
        out[f] = (c as Record<string, unknown>)[f];
    return Object.keys(out).length > 0 ? pulumi.secret(out) : undefined;
  });
  return {
    connection: pulumi.unsecret(publicPart),
    credentials,
  };
}

/**
 * False when the connection is a plain object with no key text: a key reference or an agent. Such
 * a resource stores no credentials and needs no secret-output option (about 45 bytes of state).
 */
function mayHoldKeyText(conn: pulumi.Input<ConnectionInput>): boolean {
  if (pulumi.Output.isInstance(conn) || conn instanceof Promise) return true;
  const c = conn as Record<string, unknown>;
  return SECRET_FIELDS.some((f) => c[f] !== undefined);
}

/** Base class of the hostnet resources: splits secrets out and marks them secret in state. */
export abstract class HostnetResource extends DynamicResource {
  declare readonly id: pulumi.Output<string>;
  /** machine-id of the host the object lives on (host identity check). */
  declare readonly machineId: pulumi.Output<string>;
  /** true when hostnet created the object, false when it was adopted. */
  declare readonly created: pulumi.Output<boolean>;

  protected constructor(
    kind: string,
    name: string,
    args: CommonArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    const { connection, credentials } = splitConnection(args.connection);
    // The owner token names this resource on the host (ownership.ts); no diff compares it.
    const owner = ownerToken(
      pulumi.getProject(),
      pulumi.getStack(),
      kind,
      name,
    );
    const props: Record<string, unknown> = {
      ...args,
      connection,
      ...(mayHoldKeyText(args.connection) ? { credentials } : {}),
      ownerToken: owner,
      machineId: undefined,
      created: undefined,
    };
    super(
      kind,
      name,
      props,
      mayHoldKeyText(args.connection)
        ? {
            ...opts,
            additionalSecretOutputs: [
              ...(opts?.additionalSecretOutputs ?? []),
              "credentials",
            ],
          }
        : opts,
    );
  }
}

/** Base class of resources that touch no host (rollout gates). */
export abstract class HostlessResource extends DynamicResource {
  protected constructor(
    kind: string,
    name: string,
    props: object,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(kind, name, props as Record<string, unknown>, opts);
  }
}
