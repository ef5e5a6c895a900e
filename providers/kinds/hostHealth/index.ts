export * from "./hostHealth";
