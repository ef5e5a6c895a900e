// The registry of resource kinds the runtime dispatches to.
import { ResourceKind } from "./kind";
import { filterChainKind } from "./filterChain";
import { vmNetnsKind } from "./vmNetns";
import { vethLinkKind } from "./vethLink";
import { macvlanPortKind } from "./macvlanPort";
import { hostBridgeKind } from "./hostBridge";
import { fdbEntryKind } from "./fdbEntry";
import { tapPortKind } from "./tapPort";
import { hostHealthKind, rolloutGateKind } from "./hostHealth";
import { bootRestoreKind } from "./persistence";
import { vxlanDeviceKind } from "./vxlanDevice";

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
};
