export * from "./lifecycle";
export * from "./registry";
