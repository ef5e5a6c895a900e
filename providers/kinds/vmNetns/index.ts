export * from "./vmNetns";
