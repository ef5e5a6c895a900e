export * from "./schema";
export { vethLinkPlanner, observeEnd, liveOf } from "./plan";
export type { ObservedEnd, ObservedPair } from "./plan";
export { vethLinkKind } from "./kind";
export * from "./resource";
