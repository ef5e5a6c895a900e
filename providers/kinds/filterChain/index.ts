export * from "./nftSpec";
export * from "./nftCompile";
export { FilterChainProps } from "./schema";
export { filterChainPlanner, ownedScript } from "./plan";
export { filterChainKind } from "./kind";
export { FilterChain } from "./resource";
export type { FilterChainArgs } from "./resource";
