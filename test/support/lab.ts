// Lab hosts for integration tests: bring them up (idempotent), read their inventory, build hostnet
// connections for them, and run commands over a SEPARATE OpenSSH session (the `ssh` client, not
// hostnet's ssh2 layer) so what hostnet did is verified independently.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { labDir } from "../../stacks/config";

export const ROOT = path.resolve(__dirname, "..", "..", "..");
/** This lab's directory: .hostnet/lab, or .hostnet/lab-J for HOSTNET_LAB_ID=J (scripts/lab.sh). */
export const LAB_DIR = labDir();

export interface LabHost {
  name: string;
  address: string;
  port: number;
  user: string;
  hostKey: string;
  hostKeyFingerprint: string;
  netns: string;
  rootVeth: string;
  machineId: string;
}

export interface LabInventory {
  /** The lab's bridge in the root namespace (hnlabJ) and its address there (198.18.J.1). */
  bridge: string;
  gateway: string;
  privateKeyPath: string;
  knownHostsPath: string;
  sudoUser: string;
  hosts: LabHost[];
}

export function labUp(n: number): LabInventory {
  execFileSync(
    "bash",
    [path.join(ROOT, "scripts", "lab.sh"), "up", String(n)],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  return inventory();
}

export function inventory(): LabInventory {
  return JSON.parse(
    fs.readFileSync(path.join(LAB_DIR, "inventory.json"), "utf8"),
  );
}

export function privateKey(): string {
  return fs.readFileSync(inventory().privateKeyPath, "utf8");
}

/** A hostnet connection input for a lab host (root by default, or the sudo user). */
export function labConnection(h: LabHost, opts: { sudo?: boolean } = {}) {
  const inv = inventory();
  return {
    host: h.address,
    port: h.port,
    user: opts.sudo ? inv.sudoUser : "root",
    sudo: opts.sudo ?? false,
    hostKey: h.hostKey,
    privateKey: privateKey(),
  };
}

/** Run a command on a lab host through its own OpenSSH session. */
export function sshRun(
  h: LabHost,
  command: string,
  opts: { allowFail?: boolean; user?: string } = {},
): string {
  const inv = inventory();
  const args = [
    "-i",
    inv.privateKeyPath,
    "-o",
    `UserKnownHostsFile=${inv.knownHostsPath}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=5",
    "-p",
    String(h.port),
    `${opts.user ?? "root"}@${h.address}`,
    command,
  ];
  try {
    return execFileSync("ssh", args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (err) {
    if (opts.allowFail) return (err as { stdout?: string }).stdout ?? "";
    throw err;
  }
}

export function sshJson<T = any>(h: LabHost, command: string): T {
  const out = sshRun(h, command).trim();
  return JSON.parse(out === "" ? "[]" : out) as T;
}

/** `s` matched literally inside a RegExp (for messages that name a lab address). */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
