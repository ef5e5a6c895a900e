export * from "./shell";
export * from "./ssh";
export * from "./sshPool";
export * from "./keySource";
