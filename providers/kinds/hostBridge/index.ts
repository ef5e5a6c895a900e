export * from "./hostBridge";
