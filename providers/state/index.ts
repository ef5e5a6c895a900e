export * from "./hoststate";
export * from "./ownership";
