export * from "./fdbEntry";
