export * from "./macvlanPort";
