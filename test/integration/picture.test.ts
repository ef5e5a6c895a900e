// Pictures of a live lab host (scripts/picture.ts), rendered by Graphviz to SVG and PNG: every
// attachment kind's objects are in the SVG text — a macvlan's edge to its lower device in another
// namespace, a routed VM's host route, the static fdb entries of managed ports — and `npm run picture
// -- ENV --drift` draws what the drift gate reports in red, with the drifted properties.
import { expect } from "chai";
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type * as automation from "@pulumi/pulumi/automation";
import { hostFor } from "../../providers/host";
import { closeAllSessions } from "../../providers/transport";
import { derivedNames, vmKey } from "../../components/spec";
import { renderSvg, topologyDot } from "../../scripts/picture";
import { environmentStack } from "../../scripts/stacks";
import { LabHost, labUp, privateKey, ROOT, sshRun } from "../support/lab";

const STACK = "test-pic";
/** A long, dual-stack VM name (issue 14): its interfaces carry a derived key, the picture both. */
const LONG = "picture-routed-vm-0001";
const CONFIG = `config:
  hostnet:inventory: lab
  hostnet:simulatedNics: [nic0]
  hostnet:bridges: [{name: br-pc}]
  hostnet:vms:
    - {name: pa, host: lab1, attachment: isolated-netns, bridge: br-pc, mac: "02:00:00:3b:00:01", ipv4: [198.19.61.1/24], managedFdb: true, simulate: true}
    - {name: pb, host: lab1, attachment: bridged, bridge: br-pc, mac: "02:00:00:3b:00:02", ipv4: [198.19.61.2/24], managedFdb: true, simulate: true}
    - {name: pc, host: lab1, attachment: macvlan, lower: nic0, macvlanMode: bridge, mac: "02:00:00:3b:00:03", ipv4: [198.19.62.3/24], simulate: true}
    - {name: pd, host: lab1, attachment: routed, mac: "02:00:00:3b:00:04", ipv4: [198.19.63.4/32], simulate: true}
    - {name: ${LONG}, host: lab1, attachment: routed, mac: "02:00:00:3b:00:05", ipv4: [198.19.63.5/32], ipv6: ["2001:db8:63::5/128"], simulate: true}
`;

/** Text as Graphviz writes it into SVG. */
const svgText = (text: string) =>
  text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/-/g, "&#45;");

/** `npm run picture -- ARGS` (the built script): exit code and output. */
function runPicture(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(
      "node",
      [path.join(ROOT, "dist", "scripts", "picture.js"), ...args],
      { cwd: ROOT, maxBuffer: 1 << 26 },
      (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, out: stdout + stderr }),
    ),
  );
}

/** The <g> element Graphviz writes for the node or edge whose <title> is `title`. */
function svgElement(svg: string, title: string): string {
  const at = svg.indexOf(`<title>${svgText(title)}</title>`);
  expect(at, `no element titled ${title} in the SVG`).to.be.greaterThan(-1);
  return svg.slice(at, svg.indexOf("</g>", at));
}

describe("pictures: live topology and drift overlay, rendered by Graphviz", function () {
  this.timeout(900_000);
  let lab1: LabHost;
  let stack: automation.Stack;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hn-picture-"));
  const configFile = path.join(ROOT, `Pulumi.${STACK}.yaml`);

  before(async () => {
    lab1 = labUp(1).hosts[0];
    fs.writeFileSync(configFile, CONFIG);
    stack = await environmentStack(STACK);
    await stack.up({ color: "never", refresh: true, parallel: 64 });
  });
  after(async () => {
    try {
      await stack?.destroy({ color: "never", parallel: 64 });
      await stack?.workspace.removeStack(STACK);
    } finally {
      closeAllSessions(); // the snapshot's SSH session, so mocha can exit
      fs.rmSync(configFile, { force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("shows the macvlan's lower device, the routed VM's host route and the managed fdb entries (SVG and PNG)", async () => {
    const snap = await hostFor({
      host: lab1.address,
      port: lab1.port,
      user: "root",
      hostKey: lab1.hostKey,
      privateKey: privateKey(),
    }).snapshot();
    const dot = topologyDot(snap, "lab1");
    renderSvg(dot, path.join(dir, "lab1.svg"));
    renderSvg(dot, path.join(dir, "lab1.png"));
    expect(
      fs
        .readFileSync(path.join(dir, "lab1.png"))
        .subarray(0, 8)
        .toString("latin1"),
    ).to.equal("\x89PNG\r\n\x1a\n");
    const svg = fs.readFileSync(path.join(dir, "lab1.svg"), "utf8");
    expect(svgElement(svg, "guest-pc/mv-pc->root/nic0")).to.include(">lower<");
    expect(svgElement(svg, "root/hv-pd")).to.include(">route 198.19.63.4/32<");
    expect(svgElement(svg, "root/hv-pa")).to.include(
      ">fdb 02:00:00:3b:00:01 static<",
    );
    expect(svgElement(svg, "root/tap-pb")).to.include(
      ">fdb 02:00:00:3b:00:02 static<",
    );
    for (const name of [
      "root/br-pc",
      "vm-pa/br0",
      "vm-pa/tap0",
      "guest-pc/mv-pc",
      "root/nft:hostnet",
      "vm-pa/nft:hostnet",
    ])
      svgElement(svg, name);
    expect(svg).to.not.include("#cc0000");
  });

  it("npm run picture -- ENV: a long-named dual-stack VM's name next to its key on its namespace and host end", async () => {
    const r = await runPicture([STACK, dir]);
    expect(r.code, r.out).to.equal(0);
    const key = vmKey(LONG);
    const n = derivedNames(LONG);
    expect(n.hostPort).to.equal(`hv-${key}`).and.not.include(LONG);
    const svg = fs.readFileSync(path.join(dir, "lab1.svg"), "utf8");
    const owner = `>${svgText(`vm ${LONG} (key ${key})`)}<`;
    expect(svgElement(svg, `root/${n.hostPort}`))
      .to.include(owner)
      .and.include(">route 198.19.63.5/32<")
      .and.include(">route 2001:db8:63::5/128<");
    const cluster = svg.indexOf(`>netns ${svgText(n.guestNetns)}<`);
    expect(cluster, "the VM's namespace cluster").to.be.greaterThan(-1);
    expect(svg.slice(cluster, svg.indexOf("</g>", cluster))).to.include(owner);
    // Objects of no VM are unchanged: the bridge and the root namespace carry no VM name.
    expect(svgElement(svg, "root/br-pc")).to.not.include(">vm ");
    expect(svgElement(svg, "root/hv-pd")).to.include(">vm pd<");
  });

  it("npm run picture -- ENV --drift: drifted objects in red with what drifted; the rest unchanged", async () => {
    sshRun(
      lab1,
      "bridge fdb del 02:00:00:3b:00:02 dev tap-pb master static; bridge link set dev hv-pa learning on",
    );
    const r = await runPicture([STACK, dir, "--drift"]);
    expect(r.code, r.out).to.equal(0);
    expect(r.out)
      .to.include("DRIFT VethLink lab1-pa-uplink: update: a.portFlags")
      .and.include("DRIFT FdbEntry lab1-pb-fdb: missing");
    const svg = fs.readFileSync(path.join(dir, "lab1.svg"), "utf8");
    const hvPa = svgElement(svg, "root/hv-pa");
    expect(hvPa)
      .to.include('stroke="#cc0000"')
      .and.include(">DRIFT VethLink update: a.portFlags<");
    const tapPb = svgElement(svg, "root/tap-pb");
    expect(tapPb)
      .to.include('stroke="#cc0000"')
      .and.include(">DRIFT FdbEntry missing<")
      .and.not.include("fdb 02:00:00:3b:00:02");
    // Only end a of the uplink drifted; its other end and untouched objects stay as they were.
    expect(svgElement(svg, "vm-pa/up0")).to.not.include("#cc0000");
    expect(svgElement(svg, "root/hv-pd")).to.not.include("#cc0000");
    expect(svg).to.include("2 drifted object(s) in red");
  });
});
