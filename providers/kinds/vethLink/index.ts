export * from "./schema";
export { vethLinkPlanner } from "./plan";
export { observeEnd, liveOf } from "./observe";
export type { ObservedEnd, ObservedPair } from "./observe";
export { vethLinkKind } from "./kind";
export * from "./resource";
