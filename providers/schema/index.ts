export * from "./names";
export * from "./addresses";
export * from "./sysctl";
export * from "./issues";
export * from "./ownable";
