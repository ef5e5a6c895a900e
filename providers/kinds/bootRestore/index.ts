export * from "./bootRestore";
