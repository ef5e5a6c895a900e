// HostBridge's guard of the management path: the addresses the SSH session uses, and the checks
// that refuse an uplink change that would cut it unless safeApply is set.
import { promises as dns } from "node:dns";
import { isIP } from "node:net";
import type { Link } from "../../state";
import type { KindContext } from "../kind";
import { carries } from "./path";
import { HostBridgeProps, where } from "./schema";

type P = HostBridgeProps;

/** Addresses the SSH session reaches the host by (connection.host, resolved when it is a name). */
export async function managementAddresses(ctx: KindContext): Promise<string[]> {
  const host = ctx.host.session.conn.host;
  if (isIP(host)) return [host];
  const found = await dns.lookup(host, { all: true }).catch(() => []);
  return found.map((a) => a.address);
}

/** Why detaching or re-attaching `ifname` would cut the SSH session, or undefined when it would not. */
export function managementUse(
  links: Link[],
  ifname: string,
  addrs: string[],
): string | undefined {
  const link = links.find((l) => l.name === ifname);
  const own = carries(link, addrs);
  if (own)
    return `${ifname} carries ${own}, the address this SSH connection uses`;
  const master = link?.master
    ? links.find((l) => l.name === link.master)
    : undefined;
  const via = carries(master, addrs);
  return via
    ? `${ifname} is a port of ${master!.name}, which carries ${via}, the address this SSH connection uses`
    : undefined;
}

export function refuseManagement(
  ctx: KindContext,
  p: P,
  action: string,
  reason: string,
  extra = "",
): never {
  throw new Error(
    `${ctx.host.label} (${where(p)}): refusing to ${action}: ${reason}, so doing it would cut SSH to the host ` +
      `half-way through the change. Nothing was changed. This needs the safe-apply (commit-confirm) path: set ` +
      `safeApply: true to do this with commit-confirm (the addresses and routes move with it, and the host reverts by ` +
      `itself unless hostnet reconnects and confirms within confirmTimeoutSeconds), or do it from a console, or choose ` +
      `an uplink that does not carry the management path.${extra}`,
  );
}

/**
 * The uplink must exist here and be free (or already ours). Returns why enslaving it touches the
 * management path (allowed only with safeApply), or undefined when it does not.
 */
export function checkUplink(
  ctx: KindContext,
  p: P,
  links: Link[],
  addrs: string[],
): string | undefined {
  const up = p.uplink!;
  const link = links.find((l) => l.name === up);
  if (!link) {
    throw new Error(
      `${ctx.host.label} (${where(p)}): uplink ${up} of bridge ${p.name} does not exist there. Create it first, or fix uplink.`,
    );
  }
  if (link.master === p.name) return undefined;
  if (link.master) {
    throw new Error(
      `${ctx.host.label} (${where(p)}): uplink ${up} is already a port of ${link.master}; hostnet will not take it away. ` +
        `Release it (ip link set ${up} nomaster) or choose another uplink.`,
    );
  }
  const reason = managementUse(links, up, addrs);
  if (reason && !p.safeApply)
    refuseManagement(ctx, p, `enslave ${up} to bridge ${p.name}`, reason);
  return reason;
}

/** Whether the uplink change touches the management path (refused here unless safeApply). */
export function checkUplinkChange(
  ctx: KindContext,
  olds: P,
  news: P,
  links: Link[],
  addrs: string[],
): boolean {
  const enslaving = news.uplink
    ? checkUplink(ctx, news, links, addrs) !== undefined
    : false;
  const old = olds.uplink;
  if (
    !old ||
    old === news.uplink ||
    links.find((l) => l.name === old)?.master !== news.name
  )
    return enslaving;
  const reason = managementUse(links, old, addrs);
  if (reason && !news.safeApply)
    refuseManagement(
      ctx,
      news,
      `release ${old} from bridge ${news.name}`,
      reason,
    );
  return enslaving || reason !== undefined;
}

/** Which uplink hostnet has enslaved after an update (an adopted bridge's own port is not ours). */
export function managedAfter(
  olds: P,
  news: P,
  links: Link[],
): string | undefined {
  if (!news.uplink) return undefined;
  const alreadyOurs =
    links.find((l) => l.name === news.uplink)?.master === news.name;
  return !alreadyOurs || olds.managedUplink === news.uplink
    ? news.uplink
    : undefined;
}
