export * from "./compile";
export { ArpAnswerProps } from "./schema";
export { arpAnswerKind, arpAnswerPlanner } from "./kind";
export { ArpAnswer } from "./resource";
export type { ArpAnswerArgs } from "./resource";
