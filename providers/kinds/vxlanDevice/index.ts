export * from "./vxlanDevice";
