// Integration test of scripts/lab.sh: real network namespaces, a real bridge and real sshd
// processes on this machine. Needs root. Leaves the lab DOWN (other suites run `lab.sh up`).
import { expect } from "chai";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

// dist/test/integration/lab.test.js -> project root
const PROJECT_ROOT = path.resolve(__dirname, "..", "..", "..");
const LAB_SH = path.join(PROJECT_ROOT, "scripts", "lab.sh");
// lab.sh's naming for lab J (HOSTNET_LAB_ID, default 0; lab 0 keeps the original names).
const LAB_ID = Number(process.env.HOSTNET_LAB_ID ?? "0");
const LAB_DIR = path.join(
  PROJECT_ROOT,
  ".hostnet",
  LAB_ID === 0 ? "lab" : `lab-${LAB_ID}`,
);
const BRIDGE = `hnlab${LAB_ID}`;
const NET = `198.18.${LAB_ID}`;
const NS_PREFIX = LAB_ID === 0 ? "hnlab-" : `hnlab${LAB_ID}-`;
const VETH_PREFIX = LAB_ID === 0 ? "hnl-lab" : `hnl${LAB_ID}-lab`;
const INVENTORY_PATH = path.join(LAB_DIR, "inventory.json");

interface LabHost {
  name: string;
  address: string;
  port: number;
  user: string;
  hostKey: string;
  hostKeyFingerprint: string;
  netns: string;
  rootVeth: string;
  sshdPid: number;
  machineId: string;
}

interface LabInventory {
  version: number;
  bridge: string;
  gateway: string;
  privateKeyPath: string;
  knownHostsPath: string;
  sudoUser: string;
  hosts: LabHost[];
}

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeoutMs = 60_000): RunResult {
  // cwd "/" on purpose: lab.sh must find the project from its own location.
  const r = spawnSync(cmd, args, {
    cwd: "/",
    encoding: "utf8",
    timeout: timeoutMs,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function lab(...args: string[]): string {
  const r = run("bash", [LAB_SH, ...args], 120_000);
  if (r.status !== 0) {
    throw new Error(
      `lab.sh ${args.join(" ")} exited ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`,
    );
  }
  return r.stdout;
}

function readInventory(): LabInventory {
  return JSON.parse(fs.readFileSync(INVENTORY_PATH, "utf8")) as LabInventory;
}

function hostByName(inv: LabInventory, name: string): LabHost {
  const h = inv.hosts.find((x) => x.name === name);
  if (!h)
    throw new Error(
      `inventory has no host ${name}: ${JSON.stringify(inv.hosts.map((x) => x.name))}`,
    );
  return h;
}

function sshArgs(
  inv: LabInventory,
  host: LabHost,
  user: string,
  knownHosts = inv.knownHostsPath,
): string[] {
  return [
    "-F",
    "/dev/null",
    "-i",
    inv.privateKeyPath,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=20",
    "-o",
    "LogLevel=ERROR",
    "-p",
    String(host.port),
    `${user}@${host.address}`,
  ];
}

function ssh(
  inv: LabInventory,
  host: LabHost,
  user: string,
  command: string,
): RunResult {
  return run("ssh", [...sshArgs(inv, host, user), command], 30_000);
}

function sshOk(
  inv: LabInventory,
  host: LabHost,
  user: string,
  command: string,
): string {
  const r = ssh(inv, host, user, command);
  if (r.status !== 0) {
    throw new Error(
      `ssh ${user}@${host.name} '${command}' exited ${r.status}\n${r.stderr}`,
    );
  }
  return r.stdout;
}

function netnsNames(listOutput: string): string[] {
  return listOutput
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n): n is string => !!n);
}

function rootNetnsNames(): string[] {
  const r = run("ip", ["netns", "list"]);
  expect(r.status, r.stderr).to.equal(0);
  return netnsNames(r.stdout);
}

function rootLinkNames(): string[] {
  const r = run("ip", ["-j", "link", "show"]);
  expect(r.status, r.stderr).to.equal(0);
  return (JSON.parse(r.stdout) as Array<{ ifname: string }>).map(
    (l) => l.ifname,
  );
}

function pids(): string[] {
  return fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d));
}

function tryRead(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function tryReadlink(file: string): string | undefined {
  try {
    return fs.readlinkSync(file);
  } catch {
    return undefined;
  }
}

/** Every process whose mount table contains `needle` (any mount namespace, not just ours). */
function processesWithMountMatching(needle: string): string[] {
  return pids().filter((pid) =>
    (tryRead(`/proc/${pid}/mountinfo`) ?? "").includes(needle),
  );
}

describe("lab (scripts/lab.sh)", function () {
  this.timeout(120_000);

  let inv: LabInventory;
  let t1NetnsInode = "";

  before(function () {
    if (process.getuid && process.getuid() !== 0) {
      console.log(
        `      skipped: the lab needs root (network namespaces, veths, sshd), and this runs as uid ${process.getuid()}`,
      );
      this.skip();
    }
    lab("down"); // start from a clean slate whatever a previous run left
  });

  after(function () {
    if (process.getuid && process.getuid() !== 0) return;
    lab("down");
  });

  it("up 2 creates two hosts, the bridge and a consistent inventory", function () {
    lab("up", "2");
    inv = readInventory();
    expect(inv.version).to.equal(1);
    expect(inv.bridge).to.equal(BRIDGE);
    expect(inv.gateway).to.equal(`${NET}.1`);
    expect(inv.sudoUser).to.equal("hnlab");
    expect(path.isAbsolute(inv.privateKeyPath)).to.equal(true);
    expect(fs.existsSync(inv.privateKeyPath)).to.equal(true);
    expect(inv.hosts.map((h) => h.name)).to.include.members(["lab1", "lab2"]);

    const knownHosts = fs.readFileSync(inv.knownHostsPath, "utf8").split("\n");
    const machineIds = new Set<string>();
    for (const k of [1, 2]) {
      const h = hostByName(inv, `lab${k}`);
      expect(h.address).to.equal(`${NET}.${10 + k}`);
      expect(h.port).to.equal(22);
      expect(h.user).to.equal("root");
      expect(h.netns).to.equal(`${NS_PREFIX}${k}`);
      expect(h.rootVeth).to.equal(`${VETH_PREFIX}${k}`);
      expect(h.hostKey).to.match(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+$/);
      expect(h.hostKeyFingerprint).to.match(/^SHA256:[A-Za-z0-9+/]+$/);
      expect(h.machineId).to.match(/^[0-9a-f]{32}$/);
      expect(h.sshdPid).to.be.a("number").and.to.be.greaterThan(1);
      expect(fs.existsSync(`/proc/${h.sshdPid}`), "sshd alive").to.equal(true);
      expect(knownHosts).to.include(`${h.address} ${h.hostKey}`);
      machineIds.add(h.machineId);
    }
    expect(machineIds.size, "each host has its own machine-id").to.equal(2);

    expect(rootNetnsNames()).to.include.members([
      `${NS_PREFIX}1`,
      `${NS_PREFIX}2`,
    ]);
    expect(rootLinkNames()).to.include.members([
      BRIDGE,
      `${VETH_PREFIX}1`,
      `${VETH_PREFIX}2`,
    ]);
    const addr = run("ip", ["-o", "-4", "addr", "show", "dev", BRIDGE]);
    expect(addr.stdout).to.contain(`${NET}.1/24`);
  });

  it("root can ssh to each host with a pinned host key; hostname and machine-id are the host's own", function () {
    const rootMachineId = (tryRead("/etc/machine-id") ?? "").trim();
    for (const k of [1, 2]) {
      const h = hostByName(inv, `lab${k}`);
      const out = sshOk(inv, h, "root", "hostname; cat /etc/machine-id")
        .trim()
        .split("\n");
      expect(out[0]).to.equal(`lab${k}`);
      expect(out[1]).to.equal(h.machineId);
      expect(out[1]).to.not.equal(rootMachineId);
    }
    // The pin matters: with no known host key, StrictHostKeyChecking=yes refuses to connect.
    const h1 = hostByName(inv, "lab1");
    const unpinned = run(
      "ssh",
      [...sshArgs(inv, h1, "root", "/dev/null"), "true"],
      30_000,
    );
    expect(unpinned.status).to.not.equal(0);
  });

  it("the non-root sudo user can run the allowed tools with sudo -n, and nothing else", function () {
    const h = hostByName(inv, "lab2");
    expect(sshOk(inv, h, inv.sudoUser, "id -un").trim()).to.equal("hnlab");
    const r = ssh(inv, h, inv.sudoUser, "sudo -n ip -j link show");
    expect(r.status, r.stderr).to.equal(0);
    const links = (JSON.parse(r.stdout) as Array<{ ifname: string }>).map(
      (l) => l.ifname,
    );
    expect(links).to.include.members(["lo", "mgmt0"]);
    expect(r.stderr, "no sudo warnings (host name resolves)").to.equal("");
    const denied = ssh(inv, h, inv.sudoUser, "sudo -n /usr/bin/id -u");
    expect(denied.status).to.not.equal(0);
  });

  it("status reports every host alive and reachable", function () {
    const out = lab("status");
    for (const k of [1, 2]) {
      const h = hostByName(inv, `lab${k}`);
      const line = out.split("\n").find((l) => l.startsWith(`lab${k} `));
      expect(line, out).to.be.a("string");
      const cols = (line ?? "").trim().split(/\s+/);
      expect(cols).to.deep.equal([
        `lab${k}`,
        h.address,
        h.netns,
        String(h.sshdPid),
        "yes",
        "ok",
      ]);
    }
  });

  it("a namespace created on one lab host is invisible to the other host and to the root namespace", function () {
    const lab1 = hostByName(inv, "lab1");
    const lab2 = hostByName(inv, "lab2");
    sshOk(inv, lab1, "root", "ip netns add t1");
    t1NetnsInode = sshOk(
      inv,
      lab1,
      "root",
      "stat -L -c %i /run/netns/t1",
    ).trim();
    expect(t1NetnsInode).to.match(/^\d+$/);
    expect(netnsNames(sshOk(inv, lab1, "root", "ip netns list"))).to.include(
      "t1",
    );
    expect(
      netnsNames(sshOk(inv, lab2, "root", "ip netns list")),
    ).to.not.include("t1");
    expect(rootNetnsNames()).to.not.include("t1");
    // and it can be entered on lab1, over ssh, as usual
    expect(
      sshOk(inv, lab1, "root", "ip netns exec t1 ip -o link show lo"),
    ).to.contain("lo");
  });

  it("up 2 again is idempotent (same sshd pids, same keys)", function () {
    const before = readInventory();
    lab("up", "2");
    const afterUp = readInventory();
    for (const k of [1, 2]) {
      const b = hostByName(before, `lab${k}`);
      const a = hostByName(afterUp, `lab${k}`);
      expect(a.sshdPid).to.equal(b.sshdPid);
      expect(a.hostKey).to.equal(b.hostKey);
      expect(a.machineId).to.equal(b.machineId);
    }
    // the lab1 namespace made over ssh survived (the host was not restarted)
    expect(
      netnsNames(sshOk(inv, hostByName(inv, "lab1"), "root", "ip netns list")),
    ).to.include("t1");
  });

  it("down removes namespaces, links, processes and mounts (including namespaces made on the hosts)", function () {
    const recorded = readInventory().hosts.map((h) => h.sshdPid);
    lab("down");

    expect(
      rootNetnsNames().filter((n) => n.startsWith(NS_PREFIX)),
    ).to.deep.equal([]);
    expect(rootNetnsNames()).to.not.include("t1");
    expect(
      rootLinkNames().filter((n) => n === BRIDGE || n.startsWith(VETH_PREFIX)),
    ).to.deep.equal([]);

    for (const pid of recorded) {
      const cmdline = tryRead(`/proc/${pid}/cmdline`);
      // gone, or (pid reuse) some unrelated process
      expect(
        cmdline === undefined || !cmdline.includes(`${LAB_DIR}/`),
        `sshd ${pid} still present`,
      ).to.equal(true);
    }

    // This checkout's lab only: other checkouts may run their own labs (HOSTNET_LAB_ID) meanwhile.
    expect(fs.readFileSync("/proc/mounts", "utf8")).to.not.contain(
      `${LAB_DIR}/`,
    );
    expect(
      processesWithMountMatching(`${LAB_DIR}/`),
      "processes still holding lab mounts",
    ).to.deep.equal([]);

    // t1 lived only in lab1's private /run/netns: no mount table anywhere still pins it at a
    // mount point named t1, and no process of this lab is in it, so the kernel has released it.
    // The kernel reuses a freed namespace's inode number, and other labs (test lanes, other
    // checkouts) create namespaces meanwhile, so the number alone may name one of theirs by now:
    // their sshds (command line naming another lab directory) and mounts under other names are
    // not t1.
    const t1 = `net:[${t1NetnsInode}]`;
    const otherLab = (pid: string) => {
      const cmd = tryRead(`/proc/${pid}/cmdline`) ?? "";
      return /\.hostnet\/lab/.test(cmd) && !cmd.includes(`${LAB_DIR}/`);
    };
    expect(
      pids().filter(
        (pid) => tryReadlink(`/proc/${pid}/ns/net`) === t1 && !otherLab(pid),
      ),
    ).to.deep.equal([]);
    expect(
      pids().filter((pid) =>
        (tryRead(`/proc/${pid}/mountinfo`) ?? "")
          .split("\n")
          .some((m) => m.includes(t1) && / \S*\/t1 /.test(m)),
      ),
    ).to.deep.equal([]);

    expect(fs.existsSync(INVENTORY_PATH), "inventory removed").to.equal(false);
    expect(
      fs.existsSync(path.join(LAB_DIR, "id_ed25519")),
      "client key kept",
    ).to.equal(true);
    expect(
      fs.existsSync(path.join(LAB_DIR, "lab1", "ssh_host_ed25519_key")),
      "host key kept",
    ).to.equal(true);
  });

  it("down when nothing is up is a no-op", function () {
    lab("down");
    const r = run("bash", [LAB_SH, "status"]);
    expect(r.status).to.equal(0);
    expect(r.stderr).to.contain("down");
  });
});
