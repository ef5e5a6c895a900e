// BootRestore: what hostnet applied lives in the running kernel only (/run/netns is a tmpfs), so a
// reboot loses it until the next `pulumi up`. Opt-in per host, this resource keeps an idempotent
// shell script of the host's desired network state on the host, plus a systemd oneshot unit that
// runs it early at boot (before network.target), so VM networking comes back without hostnet.
//
// renderRestoreScript(spec) is pure: the objects are given in the shape of the resources' own
// props (VmNetns, HostBridge, VethLink, TapPort, FdbEntry, FilterChain), so the script makes the
// same objects the resources make, with the same ownership marks, and a later refresh sees no drift.
import { createHash, randomBytes } from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs } from "../dynamic";
import { FdbEntryProps } from "../fdbEntry";
import { FilterChainProps, ownedScript } from "../filterChain";
import { HostBridgeProps } from "../hostBridge";
import { filePathProblem } from "../../host";
import { KindContext, ResourceKind } from "../kind";
import { OWNER_ALIAS } from "../../state";
import { portFlagLines } from "../portFlags";
import { Argv, argvToShell, heredoc, shellQuote } from "../../transport";
import { TapPortProps } from "../tapPort";
import { VethEnd, VethLinkProps } from "../vethLink";
import { VmNetnsProps } from "../vmNetns";

// ---------------------------------------------------------------------------------------
// The desired state of a host, and its rendering as a script
// ---------------------------------------------------------------------------------------

export const RestoreSpec = z
  .object({
    /** Only for the script's header. */
    host: z
      .string()
      .regex(/^[A-Za-z0-9_.@:-]{1,100}$/)
      .optional(),
    namespaces: z
      .array(VmNetnsProps.pick({ name: true, sysctls: true, loopbackUp: true }))
      .default([]),
    bridges: z
      .array(
        HostBridgeProps.pick({
          name: true,
          netns: true,
          stp: true,
          forwardDelay: true,
          ageingTime: true,
          mcastSnooping: true,
          vlanFiltering: true,
          mtu: true,
          mac: true,
          up: true,
          uplink: true,
        }),
      )
      .default([]),
    veths: z.array(VethLinkProps).default([]),
    taps: z.array(TapPortProps).default([]),
    fdb: z.array(FdbEntryProps).default([]),
    filters: z
      .array(
        FilterChainProps.pick({
          netns: true,
          table: true,
          ports: true,
          raw: true,
        }),
      )
      .default([]),
  })
  .strict();
export type RestoreSpec = z.infer<typeof RestoreSpec>;
export type RestoreSpecInput = z.input<typeof RestoreSpec>;

/** First lines of every script hostnet writes; create() only overwrites a file that carries it. */
export const RESTORE_MARK = "# hostnet boot restore";

const PRELUDE = [
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH",
  "rc=0",
  "# must: report a failing command and go on, so one broken object does not keep the others down.",
  'must() { "$@" || { echo "hostnet-restore: failed: $*" >&2; rc=1; }; }',
  "# add: creating what already exists is fine (the script runs again on every boot and by hand).",
  'add() { "$@" 2>/dev/null || true; }',
];

type Line = string;

const ipIn = (netns: string | undefined): string[] =>
  netns ? ["ip", "-n", netns] : ["ip"];
const bridgeIn = (netns: string | undefined): string[] =>
  netns ? ["bridge", "-n", netns] : ["bridge"];
const execIn = (netns: string | undefined, argv: string[]): string[] =>
  netns ? ["ip", "netns", "exec", netns, ...argv] : argv;
const must = (argv: Argv): Line => `must ${argvToShell(argv)}`;
const add = (argv: Argv): Line => `add ${argvToShell(argv)}`;
const flag = (b: boolean): string => (b ? "1" : "0");

function namespaceLines(ns: RestoreSpec["namespaces"][number]): Line[] {
  return [
    add(["ip", "netns", "add", ns.name]),
    must([
      "ip",
      "-n",
      ns.name,
      "link",
      "set",
      "lo",
      "alias",
      OWNER_ALIAS,
      ns.loopbackUp ? "up" : "down",
    ]),
    ...Object.entries(ns.sysctls).map(([k, v]) =>
      must(execIn(ns.name, ["sysctl", "-q", "-w", `${k}=${v}`])),
    ),
  ];
}

function bridgeLines(b: RestoreSpec["bridges"][number]): Line[] {
  const opts: string[] = ["stp_state", flag(b.stp)];
  if (b.forwardDelay !== undefined)
    opts.push("forward_delay", String(b.forwardDelay));
  if (b.ageingTime !== undefined)
    opts.push("ageing_time", String(b.ageingTime));
  if (b.mcastSnooping !== undefined)
    opts.push("mcast_snooping", flag(b.mcastSnooping));
  if (b.vlanFiltering !== undefined)
    opts.push("vlan_filtering", flag(b.vlanFiltering));
  const link = [
    ...(b.mtu !== undefined ? ["mtu", String(b.mtu)] : []),
    ...(b.mac !== undefined ? ["address", b.mac] : []),
  ];
  const ip = ipIn(b.netns);
  return [
    add([...ip, "link", "add", b.name, "type", "bridge"]),
    must([...ip, "link", "set", "dev", b.name, "type", "bridge", ...opts]),
    must([...ip, "link", "set", "dev", b.name, "alias", OWNER_ALIAS, ...link]),
    ...(b.uplink
      ? [must([...ip, "link", "set", "dev", b.uplink, "master", b.name])]
      : []),
    must([...ip, "link", "set", "dev", b.name, b.up ? "up" : "down"]),
  ];
}

/** One end, in the order the kernel needs: master before flags, up before routes. */
function vethEndLines(e: VethEnd, mtu: number | undefined): Line[] {
  const ip = ipIn(e.netns);
  const set = [
    ...(mtu !== undefined ? ["mtu", String(mtu)] : []),
    ...(e.mac !== undefined ? ["address", e.mac] : []),
    ...(e.master !== undefined ? ["master", e.master] : []),
  ];
  const lines = [
    must([...ip, "link", "set", "dev", e.name, "alias", OWNER_ALIAS, ...set]),
  ];
  lines.push(
    ...e.addresses.map((a) =>
      must([...ip, "addr", "replace", a, "dev", e.name]),
    ),
  );
  if (e.master !== undefined)
    lines.push(
      ...portFlagLines(e.name, e.portFlags).map((l) =>
        must([...bridgeIn(e.netns), ...l.split(" ")]),
      ),
    );
  lines.push(must([...ip, "link", "set", "dev", e.name, e.up ? "up" : "down"]));
  if (e.up)
    lines.push(
      ...e.routes.map((r) =>
        must([
          ...ip,
          "route",
          "replace",
          r.to,
          ...(r.via ? ["via", r.via] : []),
          "dev",
          e.name,
        ]),
      ),
    );
  for (const [prop, key] of [
    ["proxyArp", "proxy_arp"],
    ["forwarding", "forwarding"],
  ] as const) {
    if (e[prop] !== undefined)
      lines.push(
        must(
          execIn(e.netns, [
            "sysctl",
            "-q",
            "-w",
            `net/ipv4/conf/${e.name}/${key}=${e[prop] ? 1 : 0}`,
          ]),
        ),
      );
  }
  return lines;
}

function vethLines(v: VethLinkProps): Line[] {
  const inNs = (e: VethEnd) => (e.netns ? ["netns", e.netns] : []);
  return [
    add([
      "ip",
      "link",
      "add",
      v.a.name,
      ...inNs(v.a),
      "type",
      "veth",
      "peer",
      "name",
      v.b.name,
      ...inNs(v.b),
    ]),
    ...vethEndLines(v.a, v.mtu),
    ...vethEndLines(v.b, v.mtu),
  ];
}

function tapLines(t: z.infer<typeof TapPortProps>): Line[] {
  const ip = ipIn(t.netns);
  const create = ["tuntap", "add", "dev", t.name, "mode", "tap"];
  if (t.owner !== undefined) create.push("user", String(t.owner));
  if (t.group !== undefined) create.push("group", String(t.group));
  if (t.multiQueue) create.push("multi_queue");
  if (t.vnetHdr) create.push("vnet_hdr");
  const set = [
    ...(t.mtu !== undefined ? ["mtu", String(t.mtu)] : []),
    ...(t.mac !== undefined ? ["address", t.mac] : []),
    ...(t.master !== undefined ? ["master", t.master] : []),
  ];
  return [
    add([...ip, ...create]),
    must([...ip, "link", "set", "dev", t.name, "alias", OWNER_ALIAS, ...set]),
    ...(t.master !== undefined
      ? portFlagLines(t.name, t.portFlags).map((l) =>
          must([...bridgeIn(t.netns), ...l.split(" ")]),
        )
      : []),
    must([...ip, "link", "set", "dev", t.name, t.up ? "up" : "down"]),
  ];
}

/** The static entry, and the permanent neighbours of ARP suppression on the same bridge. */
function fdbLines(f: z.infer<typeof FdbEntryProps>): Line[] {
  return [
    must([
      ...bridgeIn(f.netns),
      "fdb",
      "replace",
      f.mac,
      "dev",
      f.port,
      "master",
      "static",
      ...(f.vlan !== undefined ? ["vlan", String(f.vlan)] : []),
    ]),
    ...f.neighbours.map((ip) =>
      must([
        ...ipIn(f.netns),
        "neigh",
        "replace",
        ip,
        "lladdr",
        f.mac,
        "dev",
        f.bridge,
        "nud",
        "permanent",
      ]),
    ),
  ];
}

/** The same script FilterChain applies (it replaces the whole table), so its digest matches. */
function filterLines(f: RestoreSpec["filters"][number]): Line[] {
  const { script } = ownedScript(FilterChainProps.parse(f));
  return [
    `must ${argvToShell(execIn(f.netns, ["nft", "-f", "-"]))} ${heredoc(script.replace(/\n$/, ""))}`,
  ];
}

/**
 * The host's desired state as one idempotent POSIX shell script: run twice, it changes nothing the
 * second time. Objects are made in dependency order (namespaces, bridges, veths, taps, fdb, nft).
 * Exits 1 when any command failed (each failure is named on stderr), after trying every object.
 */
export function renderRestoreScript(input: RestoreSpecInput): string {
  const spec = RestoreSpec.parse(input);
  const section = (title: string, lines: Line[]): Line[] =>
    lines.length > 0 ? ["", `# ${title}`, ...lines] : [];
  const body = [
    ...section("namespaces", spec.namespaces.flatMap(namespaceLines)),
    ...section("bridges", spec.bridges.flatMap(bridgeLines)),
    ...section("veth pairs", spec.veths.flatMap(vethLines)),
    ...section("taps", spec.taps.flatMap(tapLines)),
    ...section(
      "static fdb entries (and ARP-suppression neighbours)",
      spec.fdb.flatMap(fdbLines),
    ),
    ...section("nftables filter tables", spec.filters.flatMap(filterLines)),
  ];
  const header = [
    "#!/bin/sh",
    `${RESTORE_MARK}${spec.host ? ` for ${spec.host}` : ""}: generated by hostnet (BootRestore); edits are overwritten by the next pulumi up.`,
    "# Recreates the VM networking hostnet manages. Safe to run again: existing objects are kept and re-configured.",
  ];
  return [...header, ...PRELUDE, ...body, "", 'exit "$rc"', ""].join("\n");
}

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
