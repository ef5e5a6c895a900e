// BootRestore: what hostnet applied lives in the running kernel only (/run/netns is a tmpfs), so a
// reboot loses it until the next `pulumi up`. Opt-in per host, this resource keeps an idempotent
// shell script of the host's desired network state on the host, plus a systemd oneshot unit that
// runs it early at boot (before network.target), so VM networking comes back without hostnet.
//
// The script itself is rendered from the kinds' planners (restoreScript.ts); this file is the
// resource that keeps it, and its unit, on the host.
import { createHash, randomBytes } from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs } from "../dynamic";
import { filePathProblem } from "../../host";
import { KindContext, ResourceKind } from "../kind";
import { shellQuote } from "../../transport";
import { RESTORE_MARK } from "./restoreScript";

// ---------------------------------------------------------------------------------------
// The resource: the script and its systemd unit on the host
// ---------------------------------------------------------------------------------------

const FilePath = z.string().superRefine((s, ctx) => {
  const problem = filePathProblem(s);
  if (problem) ctx.addIssue({ code: "custom", message: `path ${problem}` });
});

const UnitName = z
  .string()
  .regex(
    /^[A-Za-z0-9_.@-]{1,200}\.service$/,
    "unit must be a systemd service name like hostnet-restore.service",
  );

const DEFAULT_UNIT_DIR = "/etc/systemd/system";

export const BootRestoreProps = z.object({
  /** The script to run at boot (renderRestoreScript's output); stored with a final newline. */
  script: z
    .string()
    .min(1)
    .refine((s) => !s.includes("\0"), "script must not contain NUL bytes")
    .transform((s) => (s.endsWith("\n") ? s : `${s}\n`)),
  /** Where the script lives on the host. */
  path: FilePath.default("/var/lib/hostnet/restore.sh"),
  /** Name of the systemd unit that runs it. */
  unit: UnitName.default("hostnet-restore.service"),
  /** Directory the unit file is written to (lab hosts: a per-host tmpfs, since they share /etc). */
  unitDir: FilePath.default(DEFAULT_UNIT_DIR),
  /** Desired value is always true; read() reports false when the unit file on the host differs. */
  inSync: z.boolean().default(true),
});
export type BootRestoreProps = z.infer<typeof BootRestoreProps>;

const unitPath = (p: BootRestoreProps): string => `${p.unitDir}/${p.unit}`;

export function unitFile(p: Pick<BootRestoreProps, "path">): string {
  return [
    "# Written by hostnet (BootRestore): restores VM networking at boot, before the network comes up.",
    "[Unit]",
    "Description=hostnet: restore VM network namespaces, bridges, veths, fdb and filters",
    "DefaultDependencies=no",
    "Wants=network-pre.target",
    "After=local-fs.target network-pre.target",
    "Before=network.target",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStart=/bin/sh ${p.path}`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

interface OnHost {
  script?: string;
  unit?: string;
  /** systemctl is there and systemd runs the host (a container or the lab may have the binary only). */
  systemd: boolean;
}

/** One read: both files and whether systemd runs the host. Markers carry a nonce: the script is free text. */
async function onHost(ctx: KindContext, p: BootRestoreProps): Promise<OnHost> {
  const m = `@@hn-${randomBytes(6).toString("hex")}`;
  const show = (tag: string, file: string) =>
    `if [ -f ${shellQuote(file)} ]; then echo ${m}-${tag}; cat -- ${shellQuote(file)}; fi`;
  const script = [
    show("script", p.path),
    show("unit", unitPath(p)),
    `if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then echo ${m}-systemd; fi`,
    `echo ${m}-end`,
    "",
  ].join("\n");
  const out = await ctx.host.read(
    script,
    `read the boot restore files ${p.path} and ${unitPath(p)}`,
  );
  const part = (tag: string): string | undefined => {
    const head = `${m}-${tag}\n`;
    const start = out.indexOf(head);
    return start < 0
      ? undefined
      : out.slice(
          start + head.length,
          out.indexOf(`${m}-`, start + head.length),
        );
  };
  return {
    script: part("script"),
    unit: part("unit"),
    systemd: out.includes(`${m}-systemd\n`),
  };
}

function sha256(s: string): string {
  return createHash("sha256").update(s, "utf8").digest("hex");
}

const NO_SYSTEMD =
  "systemd does not run this host (no /run/systemd/system), so the unit was written but not enabled: run the script from the host's own boot mechanism";

/** Write both files (atomically each) and enable the unit where systemd runs. */
async function install(
  ctx: KindContext,
  p: BootRestoreProps,
): Promise<Record<string, unknown>> {
  await Promise.all([
    ctx.host.run({
      kind: "writeFile",
      path: p.path,
      content: p.script,
      mode: "0755",
      what: `write the boot restore script ${p.path}`,
    }),
    ctx.host.run({
      kind: "writeFile",
      path: unitPath(p),
      content: unitFile(p),
      mode: "0644",
      what: `write the unit ${unitPath(p)}`,
    }),
  ]);
  const { systemd } = await onHost(ctx, p);
  if (systemd) {
    const target = p.unitDir === DEFAULT_UNIT_DIR ? p.unit : unitPath(p);
    await ctx.host.run({
      kind: "sh",
      commands: [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", target],
      ],
      what: `enable ${p.unit}`,
    });
  }
  return {
    enabled: systemd,
    enableNote: systemd ? `${p.unit} is enabled` : NO_SYSTEMD,
    unitPath: unitPath(p),
    scriptSha256: sha256(p.script),
  };
}

export const bootRestoreKind: ResourceKind<typeof BootRestoreProps> = {
  type: "BootRestore",
  schema: BootRestoreProps,
  replaceOn: ["path", "unit", "unitDir"],
  compared: ["script", "path", "unit", "unitDir", "inSync"],
  id: (p) => `restore/${p.path}`,

  async create(ctx, p) {
    const found = await onHost(ctx, p);
    if (
      found.script !== undefined &&
      found.script !== p.script &&
      !found.script.split("\n", 3).some((l) => l.startsWith(RESTORE_MARK))
    ) {
      throw new Error(
        `${ctx.host.label}: ${p.path} already exists and hostnet did not write it (no "${RESTORE_MARK}" line at its top); not overwriting it. ` +
          `Move it away, or choose another path for this BootRestore.`,
      );
    }
    return install(ctx, p);
  },

  async read(ctx, p) {
    const found = await onHost(ctx, p);
    if (found.script === undefined) return null;
    return {
      script: found.script,
      path: p.path,
      unit: p.unit,
      unitDir: p.unitDir,
      inSync: found.unit === unitFile(p),
    };
  },

  async update(ctx, _olds, news) {
    return install(ctx, news);
  },

  async delete(ctx, p) {
    const { systemd } = await onHost(ctx, p);
    if (systemd) {
      const target = p.unitDir === DEFAULT_UNIT_DIR ? p.unit : unitPath(p);
      // Fails when the unit is already gone, which is what delete wants anyway.
      await ctx.host
        .run({
          kind: "sh",
          commands: [["systemctl", "disable", target]],
          what: `disable ${p.unit}`,
        })
        .catch(() => undefined);
    }
    await ctx.host.run({
      kind: "sh",
      commands: [["rm", "-f", "--", p.path, unitPath(p)]],
      what: `remove ${p.path} and ${unitPath(p)}`,
    });
  },
};

export interface BootRestoreArgs
  extends
    CommonArgs,
    Partial<Inputs<Omit<z.input<typeof BootRestoreProps>, "inSync">>> {
  script: pulumi.Input<string>;
}

/** A host's boot-time restore script and its systemd unit. */
export class BootRestore extends HostnetResource {
  declare readonly path: pulumi.Output<string>;
  declare readonly unitPath: pulumi.Output<string>;
  /** false where systemd does not run the host: see enableNote. */
  declare readonly enabled: pulumi.Output<boolean>;
  declare readonly enableNote: pulumi.Output<string>;
  declare readonly scriptSha256: pulumi.Output<string>;
  constructor(
    name: string,
    args: BootRestoreArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    const props = {
      ...args,
      inSync: undefined,
      unitPath: undefined,
      enabled: undefined,
      enableNote: undefined,
      scriptSha256: undefined,
    };
    super("BootRestore", name, props as BootRestoreArgs, opts);
  }
}
