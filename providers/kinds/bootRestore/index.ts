export * from "./bootRestore";
export * from "./restoreScript";
