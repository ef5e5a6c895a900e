// One ArpAnswer per host bridge (providers/kinds/arpAnswer): broadcast ARP requests from the
// bridge's VMs on this host are answered at the asking VM's port, before the bridge, for every
// address the bridge is told about — its segment's members on every host, and its arpSuppress VMs.
// The bridge's own suppression (neigh_suppress + permanent neighbours) still walks every port for
// each request it answered (bench/README.md, case (e)); this never lets the request in.
// What the table does not answer (probes, gratuitous ARP, unknown addresses, IPv6 ND) goes on to
// the bridge as before.
import { createHash } from "crypto";
import type { ArpAnswerEntry } from "../providers/kinds/arpAnswer";
import type { HostSegment } from "./segment";
import {
  bareAddresses,
  BridgeSpec,
  bridgePort,
  onHostBridge,
  VmSpec,
} from "./spec";

export interface BridgeArpAnswer {
  bridge: string;
  /** `table netdev <table>` in the root namespace. */
  table: string;
  /** This host's VMs on the bridge, whose requests are answered, with their ports. */
  askers: Array<{ vm: string; port: string }>;
  entries: ArpAnswerEntry[];
}

/** `hostnet_arp_<bridge>`; a bridge name with characters nft identifiers lack gets a short hash. */
export function arpTableName(bridge: string): string {
  const safe = bridge.replace(/[^A-Za-z0-9_]/g, "_");
  const hash = createHash("sha256").update(bridge).digest("hex").slice(0, 6);
  return `hostnet_arp_${safe}${safe === bridge ? "" : `_${hash}`}`;
}

/** The ArpAnswer of each bridge of this host that has VMs here and addresses to answer for. */
export function arpAnswersForHost(
  host: string,
  bridges: readonly BridgeSpec[],
  vms: readonly VmSpec[],
  segments: readonly HostSegment[],
): BridgeArpAnswer[] {
  return bridges
    .filter((b) => b.arpAnswer)
    .map((b) => {
      const onBridge = vms.filter(
        (v) => v.host === host && v.bridge === b.name && onHostBridge(v),
      );
      const members =
        segments.find((s) => s.segment.bridge === b.name)?.members ?? [];
      // A bridge without a segment is this host's alone: only its own VMs are on it.
      const suppressed = onBridge.filter((v) => v.arpSuppress && !v.segment);
      const entries = [
        ...members.flatMap((m) => m.ipv4.map((ip) => ({ ip, mac: m.mac }))),
        ...suppressed.flatMap((v) =>
          bareAddresses(v.ipv4).map((ip) => ({ ip, mac: v.mac })),
        ),
      ];
      // Every VM on the bridge asks through the table, suppressed or not: the bridge itself answers
      // only requests from ports without neigh_suppress and floods the rest (arpSuppress.test).
      const askers = onBridge.map((v) => ({ vm: v.name, port: bridgePort(v) }));
      return { bridge: b.name, table: arpTableName(b.name), askers, entries };
    })
    .filter((a) => a.askers.length > 0 && a.entries.length > 0);
}
