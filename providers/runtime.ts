// The entry the engine loads: every kind's provider (providers/stub/dispatch.js, and the closures
// stored by earlier releases) requires dist/providers/runtime.js of the checkout running the
// engine, so this path never moves. The lifecycle itself lives in runtime/.
export * from "./runtime/lifecycle";
