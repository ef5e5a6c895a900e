// How hostnet recognises what it made, and which resource made it.
//
// Every hostnet resource gets an owner token from the program (HostnetResource in dynamic.ts):
// `<stack>-<resource>`, 8 and 10 hex digits of sha256 over "project/stack" and over
// "project/stack/kind/name". The token is an input that no diff compares, so stacks made by older
// releases see no change. Objects carry the mark `hostnet:<token>`:
//   - interfaces (bridge, veth, tap, macvlan/macvtap) in their alias (IFLA_IFALIAS); a veth pair
//     on both ends, the end made in the batch's own namespace in the same batch (it is the one a
//     create judges; the peer is owned through it and gets the mark right after);
//   - a namespace on its loopback's alias;
//   - an nft table in its `comment`.
// The mark is set in the same `ip -batch` / `nft -f` / shell step that makes the object, so an
// engine killed mid-run never leaves an object of ours without its mark. (`ip link add ... alias`
// is not enough: the kernel ignores IFLA_IFALIAS on creation, checked on 6.x.) Exception: a
// HostBridge made through commit-confirm (safeApply on the management path) carries the plain
// mark of older releases.
//
// Objects that cannot carry a mark are owned through the object that holds them: addresses,
// routes and per-interface sysctls through their interface; namespace sysctls through the
// namespace; a static fdb entry (and its ARP-suppression neighbours) through its port: it is ours
// when it is static, on the declared port, and that port carries a mark of this stack (a stack
// holds one FdbEntry per bridge/MAC/VLAN: the resource id). Boot-restore files carry their own
// header line (persistence.ts) and are rewritten by any hostnet BootRestore at that path.
//
// A create that finds the object with THIS resource's mark (a run that died before the state was
// written made it) adopts it and converges it (runtime.ts). Any other finding fails with the adopt
// message: no mark, another resource's mark, or the plain "hostnet" alias of older releases (and
// of boot-restore scripts), which is still recognised as hostnet's wherever "hostnet made this"
// is what matters (deletes, the foreign-interface check of a namespace).
import { createHash } from "crypto";

/** The mark of older releases (and of boot-restore scripts): hostnet's, but of no known resource. */
export const OWNER_ALIAS = "hostnet";

const TOKEN = /^[0-9a-f]{8}-[0-9a-f]{10}$/;

function hex(s: string, n: number): string {
  return createHash("sha256").update(s, "utf8").digest("hex").slice(0, n);
}

/** The owner token of one resource of one stack. */
export function ownerToken(
  project: string,
  stack: string,
  kind: string,
  name: string,
): string {
  return `${hex(`${project}/${stack}`, 8)}-${hex(`${project}/${stack}/${kind}/${name}`, 10)}`;
}

export function isOwnerToken(s: unknown): s is string {
  return typeof s === "string" && TOKEN.test(s);
}

/** The mark written on objects a resource makes; the legacy mark when the resource has no token. */
export function ownerMark(token: string | undefined): string {
  return token === undefined ? OWNER_ALIAS : `${OWNER_ALIAS}:${token}`;
}

/** Whether a mark (alias, comment) says hostnet made the object, by this release or an older one. */
export function isHostnetMark(mark: string | undefined): boolean {
  return (
    mark === OWNER_ALIAS ||
    (mark !== undefined &&
      mark.startsWith(`${OWNER_ALIAS}:`) &&
      isOwnerToken(mark.slice(OWNER_ALIAS.length + 1)))
  );
}

/**
 * Who made an object that is there, judged by its mark against the resource's token:
 * `mine` — this resource (adopt and converge); `stack` — another resource of the same stack;
 * `hostnet` — another stack, or an older release; `none` — not hostnet.
 */
export type MarkVerdict = "mine" | "stack" | "hostnet" | "none";

export function judgeMark(
  mark: string | undefined,
  token: string | undefined,
): MarkVerdict {
  if (!isHostnetMark(mark)) return "none";
  const theirs = mark!.slice(OWNER_ALIAS.length + 1);
  if (token === undefined || !isOwnerToken(theirs)) return "hostnet";
  if (theirs === token) return "mine";
  return theirs.slice(0, 8) === token.slice(0, 8) ? "stack" : "hostnet";
}

/** What a kind found where its object should be, for an idempotent create. */
export type Finding =
  { present: false } | { present: true; verdict: MarkVerdict };

export const ABSENT: Finding = { present: false };

export function found(
  mark: string | undefined,
  token: string | undefined,
): Finding {
  return { present: true, verdict: judgeMark(mark, token) };
}

/** Kernel answers that mean "already gone": deletes tolerate these. */
export function isGone(err: unknown): boolean {
  return /Cannot find device|No such file or directory|No such device|does not exist|Cannot open network namespace|No such process|Object not found/i.test(
    String(err),
  );
}
