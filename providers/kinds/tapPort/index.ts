export * from "./tapPort";
