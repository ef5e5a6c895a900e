// The registry of resource kinds the runtime dispatches to.
import { ResourceKind } from "../kinds/kind";
import { filterChainKind } from "../kinds/filterChain";
import { vmNetnsKind } from "../kinds/vmNetns";
import { vethLinkKind } from "../kinds/vethLink";
import { macvlanPortKind } from "../kinds/macvlanPort";
import { hostBridgeKind } from "../kinds/hostBridge";
import { fdbEntryKind } from "../kinds/fdbEntry";
import { tapPortKind } from "../kinds/tapPort";
import { hostHealthKind, rolloutGateKind } from "../kinds/hostHealth";
import { bootRestoreKind } from "../kinds/bootRestore";
import { vxlanDeviceKind } from "../kinds/vxlanDevice";
import { arpAnswerKind } from "../kinds/arpAnswer";

export const KINDS: Record<string, ResourceKind<any>> = {
  BootRestore: bootRestoreKind,
  VmNetns: vmNetnsKind,
  VethLink: vethLinkKind,
  MacvlanPort: macvlanPortKind,
  HostBridge: hostBridgeKind,
  FdbEntry: fdbEntryKind,
  TapPort: tapPortKind,
  FilterChain: filterChainKind,
  HostHealth: hostHealthKind,
  RolloutGate: rolloutGateKind,
  VxlanDevice: vxlanDeviceKind,
  ArpAnswer: arpAnswerKind,
};
