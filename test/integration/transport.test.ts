// The host layer on a real lab host over real SSH: connection reuse, recovery from a killed
// connection, host-key pinning, coalescing of 500 concurrent operations with exact failure
// attribution, one-round-trip snapshots of 300 namespaces, and a non-root sudo user.
import { expect } from "chai";
import { execFileSync } from "child_process";
import { Host, hostFor, HostOpError } from "../../providers/host";
import * as net from "net";
import {
  batchLine,
  closeAllSessions,
  Connection,
  HostSession,
} from "../../providers/transport";
import { LabHost, labConnection, labUp, sshRun } from "../support/lab";

/** Our own established TCP connections to the host, as the kernel of this machine sees them. */
function ourConnections(h: LabHost): Array<{ localPort: number }> {
  const out = execFileSync(
    "ss",
    ["-tnpH", "state", "established", "dst", `${h.address}:22`],
    { encoding: "utf8" },
  );
  return out
    .split("\n")
    .filter((l) => l.includes(`pid=${process.pid},`))
    .map((l) => ({ localPort: Number(/\S+:(\d+)\s+\S+:22\b/.exec(l)?.[1]) }));
}

/**
 * A TCP relay on this machine in front of the lab host's sshd whose first `silent` connections are
 * accepted and never answered (an sshd too busy to send its banner); later ones reach the sshd.
 */
async function stallingRelay(
  h: LabHost,
  silent: number,
): Promise<{ port: number; accepted: () => number; close: () => void }> {
  let accepted = 0;
  const sockets: net.Socket[] = [];
  const server = net.createServer((client) => {
    sockets.push(client);
    if (++accepted <= silent) return;
    const upstream = net.connect(h.port, h.address);
    sockets.push(upstream);
    client.pipe(upstream).pipe(client);
    const end = () => (client.destroy(), upstream.destroy());
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** Kill the sshd process serving one of our connections, from inside the lab host. */
function killServerSide(h: LabHost, localPort: number): void {
  const out = execFileSync(
    "ip",
    [
      "netns",
      "exec",
      h.netns,
      "ss",
      "-tnpH",
      "state",
      "established",
      "sport",
      "= :22",
      "dport",
      `= :${localPort}`,
    ],
    {
      encoding: "utf8",
    },
  );
  const pids = [...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
  expect(pids, `sshd serving port ${localPort}`).to.not.be.empty;
  for (const pid of new Set(pids)) process.kill(pid, "SIGKILL");
}

describe("transport: pooled SSH, coalescing and snapshots on a lab host", function () {
  this.timeout(300_000);
  let h: LabHost;
  let host: Host;

  before(() => {
    h = labUp(3).hosts[2];
    closeAllSessions();
    host = hostFor(labConnection(h));
    sshRun(h, "ip netns del trq 2>/dev/null; ip netns add trq");
  });

  after(() => {
    sshRun(
      h,
      "ip netns del trq 2>/dev/null; for n in $(ip netns list | cut -d' ' -f1 | grep '^trs-'); do ip netns del $n; done; rm -f /tmp/tr-marker",
      {
        allowFail: true,
      },
    );
    closeAllSessions();
  });

  it("reuses one connection for many concurrent commands", async () => {
    const before = host.session.stats.connections;
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => host.read(`echo ${i}\n`, "echo")),
    );
    expect(results.map((r) => Number(r.trim()))).to.deep.equal(
      Array.from({ length: 30 }, (_, i) => i),
    );
    expect(host.session.stats.connections - before).to.be.at.most(1);
    expect(ourConnections(h)).to.have.length(1);
  });

  it("re-establishes a connection killed mid-run and completes an idempotent read", async () => {
    await host.read("true\n", "warm up");
    const [conn] = ourConnections(h);
    const connectionsBefore = host.session.stats.connections;
    const pending = host.read("sleep 1; echo survived\n", "slow read");
    await new Promise((r) => setTimeout(r, 300));
    killServerSide(h, conn.localPort);
    expect((await pending).trim()).to.equal("survived");
    expect(host.session.stats.connections).to.equal(connectionsBefore + 1);
    expect(host.session.stats.retries).to.be.greaterThan(0);
  });

  it("a handshake the host does not answer in time is tried once more; safe apply's own sessions are not", async () => {
    const relay = await stallingRelay(h, 1);
    try {
      const conn = Connection.parse({
        ...labConnection(h),
        host: "127.0.0.1",
        port: relay.port,
        connectTimeoutMs: 1000,
      });
      const session = new HostSession(conn);
      const r = await session.exec("hostname\n", { what: "name the host" });
      session.drop();
      expect(r.stdout.trim()).to.equal(h.name);
      expect(session.stats.retries, "one more handshake").to.equal(1);
      expect(relay.accepted(), "connections the relay took").to.equal(2);

      const relay2 = await stallingRelay(h, 1);
      try {
        const once = new HostSession({ ...conn, port: relay2.port }, []);
        let err: Error | undefined;
        await once.exec("hostname\n").catch((e) => (err = e));
        expect(err?.message).to.match(/cannot connect: Timed out/);
        expect(relay2.accepted(), "no second handshake").to.equal(1);
      } finally {
        relay2.close();
      }
    } finally {
      relay.close();
    }
  });

  it("refuses a host whose key does not match the pin, and runs nothing", async () => {
    const wrong = labUp(3).hosts[0];
    const impostor = hostFor({ ...labConnection(h), hostKey: wrong.hostKey });
    let err: Error | undefined;
    await impostor
      .read("touch /tmp/tr-marker\n", "touch a marker")
      .catch((e) => (err = e));
    expect(err?.message)
      .to.include("host key mismatch")
      .and.include(wrong.hostKeyFingerprint)
      .and.include(h.hostKeyFingerprint);
    expect(
      sshRun(h, "test -e /tmp/tr-marker && echo present || echo absent").trim(),
    ).to.equal("absent");
  });

  it("rejects hostile connection input before opening any connection", () => {
    expect(() =>
      hostFor({
        ...labConnection(h),
        host: "198.18.0.13; touch /tmp/tr-marker",
      }),
    ).to.throw(/connection\.host/);
    expect(() => hostFor({ ...labConnection(h), user: "root$(id)" })).to.throw(
      /connection\.user/,
    );
  });

  it("merges 500 concurrent operations into a handful of round trips and blames exactly the failing one", async () => {
    const execsBefore = host.session.stats.execs;
    const ops = Array.from({ length: 500 }, (_, i) => {
      const name = i === 250 ? "trb7" : `trb${i}`; // op 250 collides with op 7
      return host.run({
        kind: "batch",
        tool: "ip",
        netns: "trq",
        lines: [batchLine(["link", "add", name, "type", "bridge"])],
        what: `create bridge ${name} (#${i})`,
      });
    });
    const settled = await Promise.allSettled(ops);
    const failed = settled.flatMap((s, i) =>
      s.status === "rejected" ? [i] : [],
    );
    expect(failed).to.deep.equal([250]);
    const err = (settled[250] as PromiseRejectedResult).reason as HostOpError;
    expect(err).to.be.instanceOf(HostOpError);
    expect(err.message)
      .to.include("netns trq")
      .and.include("create bridge trb7 (#250)")
      .and.include("File exists");
    expect(host.session.stats.execs - execsBefore).to.be.at.most(4);
    expect(
      Number(sshRun(h, "ip -n trq -o link show type bridge | wc -l").trim()),
    ).to.equal(499);
  });

  it("reads the state of 300 namespaces in one round trip, shared by concurrent readers", async () => {
    sshRun(
      h,
      "for i in $(seq 1 300); do echo netns add trs-$i; done | ip -batch -",
    );
    host.invalidate();
    const execsBefore = host.session.stats.execs;
    const snaps = await Promise.all([
      host.snapshot(),
      host.snapshot(),
      host.snapshot(),
    ]);
    expect(host.session.stats.execs - execsBefore).to.equal(1);
    const names = Object.keys(snaps[0].namespaces).filter((n) =>
      n.startsWith("trs-"),
    );
    expect(names).to.have.length(300);
    expect(snaps[0].machineId).to.equal(h.machineId);
    expect(
      snaps[0].namespaces["trs-17"].links.map((l) => l.name),
    ).to.deep.equal(["lo"]);
  });

  it("reads only the namespaces a resource asks for; concurrent scoped readers share one round trip; a write invalidates", async () => {
    host.invalidate();
    const execsBefore = host.session.stats.execs;
    const [a, b, again] = await Promise.all([
      host.snapshot(["trs-1"]),
      host.snapshot(["trs-2", "trs-none"]),
      host.snapshot(["trs-1"]),
    ]);
    expect(
      host.session.stats.execs - execsBefore,
      "one read for the union",
    ).to.equal(1);
    for (const snap of [a, b, again]) {
      expect(Object.keys(snap.namespaces).sort()).to.deep.equal([
        "",
        "trs-1",
        "trs-2",
      ]);
      expect(snap.absent).to.deep.equal(["trs-none"]);
    }
    // Cached until a write: the same scope again costs nothing.
    expect(
      (await host.snapshot(["trs-2"])).namespaces["trs-2"].links.map(
        (l) => l.name,
      ),
    ).to.deep.equal(["lo"]);
    expect(host.session.stats.execs - execsBefore).to.equal(1);
    await host.run({
      kind: "batch",
      tool: "ip",
      netns: "trs-2",
      lines: [batchLine(["link", "add", "trscope", "type", "bridge"])],
      what: "create bridge trscope",
    });
    const after = await host.snapshot(["trs-2"]);
    expect(
      after.namespaces["trs-2"].links.map((l) => l.name).sort(),
    ).to.deep.equal(["lo", "trscope"]);
  });

  // `host` took lab3's lock with its writes above: a second login to the same machine from this
  // process must share it, not wait 15 minutes on its own deployment.
  it("works as a non-root user through sudo -n, sharing this process's lock on the host", async () => {
    const viaSudo = hostFor(labConnection(h, { sudo: true }));
    expect((await viaSudo.read("id -u\n", "who am I")).trim()).to.equal("0");
    await viaSudo.run({
      kind: "batch",
      tool: "ip",
      netns: "trq",
      lines: [batchLine(["link", "add", "trsudo", "type", "bridge"])],
      what: "create bridge via sudo",
    });
    expect(sshRun(h, "ip -n trq -o link show trsudo")).to.include("trsudo");
    expect(viaSudo.session.label).to.match(/^hnlab@/);
  });
});
