// SSH transport: the only code that talks to hosts. One pool per host (user@address:port) for the
// whole dynamic-provider process, so every resource of a deployment shares its connection(s).
// Scripts go to `sh -s` on stdin, never into the exec request, so their size is unbounded and
// their text never meets a second layer of shell parsing.
import * as crypto from "crypto";
import * as fs from "fs";
import { z } from "zod";
import { HostName, UnixUser } from "../schema";

const HostKeyPin = z
  .string()
  .trim()
  .regex(
    /^(SHA256:[A-Za-z0-9+/]{43}=?|(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( \S+)?)$/,
    "host key must be an OpenSSH public key line ('ssh-ed25519 AAAA...') or a fingerprint ('SHA256:...')",
  );

/** A connection's fields, before the rules that tie them together (Connection); stack config's host entries are derived from it. */
export const ConnectionFields = z
  .object({
    host: HostName,
    port: z.number().int().min(1).max(65535).default(22),
    user: UnixUser.default("root"),
    /** OpenSSH private key text. Pass it as a Pulumi secret; it never appears in plain state or logs. */
    privateKey: z.string().min(1).optional(),
    privateKeyPassphrase: z.string().optional(),
    /**
     * The key by reference: an OpenSSH private key file the runner reads when it connects. Only
     * the path is stored in state (keySource.ts).
     */
    privateKeyFile: z
      .string()
      .startsWith("/", "privateKeyFile must be an absolute path")
      .optional(),
    /**
     * The key by reference: the name of a stack config secret holding it ("hostnet:privateKey").
     * The engine hands the stack config to the provider process; only the name is stored in state.
     */
    privateKeyConfig: z
      .string()
      .regex(
        /^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$/,
        "privateKeyConfig must be a config key like hostnet:privateKey",
      )
      .optional(),
    /** Use the ssh-agent at SSH_AUTH_SOCK (or this socket path). */
    agent: z.union([z.boolean(), z.string().startsWith("/")]).default(false),
    /** Pinned host key: public key line or SHA256 fingerprint. */
    hostKey: HostKeyPin.optional(),
    knownHostsFile: z
      .string()
      .startsWith("/", "knownHostsFile must be an absolute path")
      .optional(),
    /** Accept whatever key the host presents the first time. Explicit opt-in only. */
    trustOnFirstUse: z.boolean().default(false),
    /** Run commands through `sudo -n` (for a non-root user). */
    sudo: z.boolean().default(false),
    connectTimeoutMs: z.number().int().min(100).max(600_000).default(15_000),
    commandTimeoutMs: z.number().int().min(100).max(3_600_000).default(300_000),
    /**
     * How long this host waits for hostnet's confirmation of a commit-confirm change on a route
     * near the management path (VethLink) before it reverts the change by itself; default 15 s.
     * A slow link to the host needs more: hostnet must make a NEW SSH session within it.
     */
    confirmTimeoutSeconds: z
      .number()
      .int("confirmTimeoutSeconds must be a whole number of seconds")
      .min(
        5,
        "confirmTimeoutSeconds must be at least 5 (hostnet needs time to reconnect and confirm)",
      )
      .max(
        3600,
        "confirmTimeoutSeconds must be at most 3600 (an hour without management access is long enough)",
      )
      .optional(),
  })
  .strict();

const KEY_FIELDS = [
  "privateKey",
  "privateKeyFile",
  "privateKeyConfig",
] as const;

export const Connection = ConnectionFields.refine(
  (c) => KEY_FIELDS.some((f) => c[f] !== undefined) || c.agent !== false,
  {
    message:
      "give privateKeyFile or privateKeyConfig (a reference to the key), privateKey (as a secret), or agent: true",
    path: ["privateKey"],
  },
)
  .refine((c) => KEY_FIELDS.filter((f) => c[f] !== undefined).length <= 1, {
    message: "give only one of privateKey, privateKeyFile and privateKeyConfig",
    path: ["privateKey"],
  })
  .refine(
    (c) =>
      c.hostKey !== undefined ||
      c.knownHostsFile !== undefined ||
      c.trustOnFirstUse,
    {
      message:
        "pin the host key (hostKey or knownHostsFile); trustOnFirstUse: true is the explicit opt-out",
      path: ["hostKey"],
    },
  );
export type Connection = z.infer<typeof Connection>;
export type ConnectionInput = z.input<typeof Connection>;

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Safe to run twice: a read, or a write that converges. Only these are retried after a drop. */
  idempotent?: boolean;
  timeoutMs?: number;
  /** Words for errors: "create bridge br0". */
  what?: string;
}

/** Raised when the host could not be reached or the session broke; the command may not have run. */
export class TransportError extends Error {
  constructor(
    message: string,
    readonly hostLabel: string,
  ) {
    super(message);
    this.name = "TransportError";
  }
}

export function hostLabel(
  c: Pick<Connection, "user" | "host" | "port">,
): string {
  return `${c.user}@${c.host}:${c.port}`;
}

export function fingerprintOf(keyBlob: Buffer): string {
  return (
    "SHA256:" +
    crypto
      .createHash("sha256")
      .update(keyBlob)
      .digest("base64")
      .replace(/=+$/, "")
  );
}

function pinFingerprint(pin: string): string {
  if (pin.startsWith("SHA256:")) return pin.replace(/=+$/, "");
  return fingerprintOf(Buffer.from(pin.split(/\s+/)[1], "base64"));
}

/** Fingerprints that known_hosts lists for this host (plain and hashed entries, [host]:port form). */
export function knownHostsFingerprints(
  text: string,
  host: string,
  port: number,
): string[] {
  const names = port === 22 ? [host] : [`[${host}]:${port}`];
  const out: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith("@")) continue;
    const [hosts, , blob] = line.split(/\s+/);
    if (!blob) continue;
    const matches = hosts.split(",").some((h) => {
      if (!h.startsWith("|1|")) return names.includes(h);
      const [, , salt, hash] = h.split("|");
      return names.some(
        (n) =>
          crypto
            .createHmac("sha1", Buffer.from(salt, "base64"))
            .update(n)
            .digest("base64") === hash,
      );
    });
    if (matches) out.push(fingerprintOf(Buffer.from(blob, "base64")));
  }
  return out;
}

export function expectedFingerprints(c: Connection): string[] | "any" {
  if (c.hostKey) return [pinFingerprint(c.hostKey)];
  if (c.knownHostsFile) {
    const fps = knownHostsFingerprints(
      fs.readFileSync(c.knownHostsFile, "utf8"),
      c.host,
      c.port,
    );
    if (fps.length > 0 || !c.trustOnFirstUse) return fps;
  }
  return "any";
}

/** Wrap a script for the remote side: `sh -s` reads it from stdin; sudo -n never prompts. */
export function remoteCommand(c: Pick<Connection, "sudo">): string {
  return c.sudo ? "sudo -n /bin/sh -s" : "/bin/sh -s";
}
