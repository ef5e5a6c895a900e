export { FdbEntryProps, RemoteDst } from "./schema";
export { fdbEntryPlanner } from "./plan";
export type { FdbObserved, RemoteRow } from "./plan";
export { fdbEntryKind } from "./kind";
export { FdbEntry } from "./resource";
export type { FdbEntryArgs } from "./resource";
