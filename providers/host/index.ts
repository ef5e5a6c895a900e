export * from "./engineLog";
export * from "./host";
export * from "./hostLock";
export * from "./hostQueue";
export * from "./managementPath";
export * from "./safeApply";
