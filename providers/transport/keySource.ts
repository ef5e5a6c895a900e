// Where the SSH private key comes from. A connection names its key by reference (a file on the
// runner, or a stack config secret the engine hands the provider process), so the state of each
// resource stores only that reference: the key itself is read here, when a session connects.
// Key text given directly (privateKey) still works and is stored encrypted with each resource.
import * as fs from "fs";
import type { Connection } from "./ssh";

/** The stack's configuration as the engine hands it to the provider process (dynamic `configure`). */
export interface StackConfigView {
  get(key: string): string | undefined;
}

let stackConfig: StackConfigView | undefined;

/** Called once per provider process with the stack's configuration (providers/stub: configure). */
export function configureStack(config: StackConfigView): void {
  stackConfig = config;
}

/** The fields of a connection that say how to authenticate, never where to connect. */
export const KEY_SOURCE_FIELDS = [
  "privateKey",
  "privateKeyPassphrase",
  "privateKeyFile",
  "privateKeyConfig",
  "agent",
] as const;

/** The private key text for a session, from the connection's key source; undefined for an agent. */
export function privateKeyOf(
  conn: Pick<Connection, "privateKey" | "privateKeyFile" | "privateKeyConfig">,
  label: string,
): string | undefined {
  if (conn.privateKey !== undefined) return conn.privateKey;
  if (conn.privateKeyFile !== undefined) {
    try {
      return fs.readFileSync(conn.privateKeyFile, "utf8");
    } catch (err) {
      throw new Error(
        `${label}: cannot read the SSH key file ${conn.privateKeyFile} that this resource's connection names ` +
          `(privateKeyFile): ${(err as Error).message}. Nothing was run on the host. Put the key at that path on ` +
          `this runner (the lab: bash scripts/lab.sh up), or change the connection's key source and run \`pulumi up\`.`,
        { cause: err },
      );
    }
  }
  if (conn.privateKeyConfig !== undefined) {
    const key = stackConfig?.get(conn.privateKeyConfig);
    if (key === undefined || key === "")
      throw new Error(
        `${label}: the SSH key is the stack config secret ${conn.privateKeyConfig} (privateKeyConfig), but ` +
          (stackConfig
            ? `this stack has no such value`
            : `the engine gave this provider process no stack configuration (node_modules/hostnet-provider ` +
              `older than this checkout? run npm ci)`) +
          `. Nothing was run on the host. Set it: pulumi config set --secret ${conn.privateKeyConfig} "$(cat ~/.ssh/id_ed25519)".`,
      );
    return key;
  }
  return undefined;
}
