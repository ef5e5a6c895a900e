// The registry of resource kinds the runtime dispatches to.
import { ResourceKind } from "./kind";
import { vmNetnsKind } from "./vmNetns";

export const KINDS: Record<string, ResourceKind<any>> = {
  VmNetns: vmNetnsKind,
};
