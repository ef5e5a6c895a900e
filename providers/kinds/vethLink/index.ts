export * from "./vethLink";
