export * from "./schema";
export * from "./plan";
export * from "./kind";
export * from "./resource";
