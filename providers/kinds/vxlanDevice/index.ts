export { SEGMENT_PORT_FLAGS, VxlanDeviceProps } from "./schema";
export { vxlanDevicePlanner } from "./plan";
export type { VxlanObserved } from "./plan";
export { vxlanDeviceKind } from "./kind";
export { VxlanDevice } from "./resource";
export type { VxlanDeviceArgs } from "./resource";
