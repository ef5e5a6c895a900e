export * from "./rawIp";
export * from "./rawNft";
export * from "./model";
export * from "./normalize";
export { NAMESPACE_SYSCTLS, SECTIONS, snapshotScript } from "./snapshotScript";
export type { SnapshotOptions } from "./snapshotScript";
export { parseNetdevHooks, parseSnapshot, SnapshotParseError } from "./parse";
export * from "./nftCanonical";
export * from "./ownership";
