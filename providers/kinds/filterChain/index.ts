export * from "./nftSpec";
export * from "./nftCompile";
export * from "./arpAnswer";
export { FilterChainProps } from "./schema";
export { filterChainPlanner, ownedScript, tableDigest } from "./plan";
export type { FilterChainObserved } from "./plan";
export { filterChainKind } from "./kind";
export { FilterChain } from "./resource";
export type { FilterChainArgs } from "./resource";
