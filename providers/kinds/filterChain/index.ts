export * from "./filterChain";
export * from "./nftCompile";
