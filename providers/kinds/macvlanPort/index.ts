export { MACVLAN_MODES, MacvlanPortProps } from "./schema";
export { macvlanPortPlanner, liveOf as liveMacvlanPort } from "./plan";
export type { ObservedPort } from "./plan";
export { macvlanPortKind } from "./kind";
export * from "./resource";
