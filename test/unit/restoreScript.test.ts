// The boot restore script as rendered from planners: every step of every resource in order,
// `makes` steps tolerated, other failures reported with the script going on and exiting 1. The
// script is run for real with harmless commands (a planner made up here), never `ip` on this machine.
import { expect } from "chai";
import { spawnSync } from "child_process";
import { z } from "zod";
import {
  renderRestoreScript,
  RestoreKind,
  RESTORE_MARK,
} from "../../providers/kinds/bootRestore";
import { KINDS } from "../../providers/runtime/index";

const Echo = z.object({ words: z.array(z.string().regex(/^[a-z]+$/)) });
const sh = (argv: string[], makes?: boolean) => ({
  op: { kind: "sh" as const, commands: [argv], what: `run ${argv[0]}` },
  ...(makes ? { makes } : {}),
});
const FAKE: Record<string, RestoreKind> = {
  Echo: {
    schema: Echo,
    planner: {
      plan: (p: z.infer<typeof Echo>) => p.words.map((w) => sh(["echo", w])),
    },
  },
  Fails: {
    schema: z.object({ makes: z.boolean() }),
    planner: { plan: (p: { makes: boolean }) => [sh(["false"], p.makes)] },
  },
};

function run(script: string) {
  const r = spawnSync("sh", ["-s"], { input: script, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("boot restore script (rendered from planners)", () => {
  it("runs every step in order; a failing makes step is tolerated, any other is named and the script goes on to exit 1", () => {
    const ok = renderRestoreScript(
      [
        { kind: "Echo", name: "first", props: { words: ["one", "two"] } },
        { kind: "Fails", name: "exists", props: { makes: true } },
        { kind: "Echo", name: "last", props: { words: ["three"] } },
      ],
      FAKE,
      "lab1",
    );
    expect(ok.split("\n")[1]).to.match(new RegExp(`^${RESTORE_MARK} for lab1`));
    const good = run(ok);
    expect(good.status, good.stderr).to.equal(0);
    expect(good.stdout.split("\n").filter(Boolean)).to.deep.equal([
      "one",
      "two",
      "three",
    ]);

    const bad = run(
      renderRestoreScript(
        [
          { kind: "Fails", name: "broken", props: { makes: false } },
          { kind: "Echo", name: "after", props: { words: ["after"] } },
        ],
        FAKE,
      ),
    );
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.include("hostnet-restore: failed: run false");
    expect(bad.stdout).to.include("after");
  });

  it("refuses bad props naming the resource and field, unknown kinds, and a host label that is not plain", () => {
    expect(() =>
      renderRestoreScript(
        [{ kind: "Echo", name: "e1", props: { words: ["$(reboot)"] } }],
        FAKE,
      ),
    ).to.throw(/e1 \(Echo\)[\s\S]*e1\.words\[0\]/);
    expect(() =>
      renderRestoreScript([{ kind: "Nope", name: "n1", props: {} }], FAKE),
    ).to.throw(/n1 is of kind Nope/);
    expect(() => renderRestoreScript([], FAKE, "a b")).to.throw(/host/);
  });

  it("renders the real kinds as valid sh, with the owner's mark, and a namespace name that could reach a shell is refused", () => {
    const owner = "0123abcd-0123456789";
    const script = renderRestoreScript(
      [
        {
          kind: "VmNetns",
          name: "h-vm1-ns",
          props: { name: "vm-x", sysctls: { "net.ipv4.ip_forward": "1" } },
          owner,
        },
        {
          kind: "HostBridge",
          name: "h-br",
          props: { name: "br-x", mtu: 9000, mac: "02:00:00:00:00:01" },
          owner,
        },
        {
          kind: "VethLink",
          name: "h-vm1-uplink",
          props: {
            a: { name: "hv-x", master: "br-x", portFlags: { learning: false } },
            b: { name: "up0", netns: "vm-x", addresses: ["10.0.0.1/24"] },
          },
          owner,
        },
        {
          kind: "TapPort",
          name: "h-vm1-tap",
          props: { name: "tap0", netns: "vm-x" },
          owner,
        },
        {
          kind: "FdbEntry",
          name: "h-vm1-fdb",
          props: {
            bridge: "br-x",
            port: "hv-x",
            mac: "02:00:00:00:00:02",
            neighbours: ["10.0.0.2"],
          },
          owner,
        },
        {
          kind: "FilterChain",
          name: "h-vm1-filter",
          props: {
            netns: "vm-x",
            table: "hostnet",
            ports: [
              {
                port: "tap0",
                policy: "clean-traffic",
                mac: "02:00:00:00:00:02",
                ipv4: ["10.0.0.2"],
              },
            ],
          },
          owner,
        },
        {
          kind: "MacvlanPort",
          name: "h-vm2-mv",
          props: {
            name: "mv-y",
            type: "macvlan",
            lower: "eth9",
            netns: "guest-y",
            mode: "private",
            mac: "02:00:00:00:00:03",
          },
          owner,
        },
      ],
      KINDS,
      "lab1",
    );
    const syntax = spawnSync("sh", ["-n"], { input: script, encoding: "utf8" });
    expect(syntax.status, syntax.stderr).to.equal(0);
    expect(script).to.include(`hostnet:${owner}`);
    for (const name of ["vm-x", "br-x", "hv-x", "tap0", "mv-y", "10.0.0.2"])
      expect(script).to.include(name);
    expect(() =>
      renderRestoreScript(
        [{ kind: "VmNetns", name: "n", props: { name: "vm-x; reboot" } }],
        KINDS,
      ),
    ).to.throw(/n\.name: /);
  });
});
