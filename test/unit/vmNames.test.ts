// Any VM name (components/spec.ts VmName, vmKey, derivedNames) and the per-host collision check
// (stacks/config.ts crossCheck): pure validation and name derivation.
import { expect } from "chai";
import { derivedNames, VmName, VmSpec, vmKey } from "../../components/spec";
import { crossCheck, StackConfig } from "../../stacks/config";

describe("VM names: any name, short stable interface names", () => {
  it("accepts 1–63 letters, digits, '-', '.', '_' starting with a letter or digit; rejects the rest", () => {
    for (const ok of [
      "a",
      "web1",
      "k8s-worker-prod-017",
      "3f2a9c1e-8b7d-4e2f-9a1b-0c4d5e6f7a8b",
      "DB_01.eu",
      "x".repeat(63),
    ]) {
      expect(VmName.safeParse(ok).success, ok).to.equal(true);
    }
    for (const bad of [
      "",
      "x".repeat(64),
      "-web",
      ".web",
      "bad;1",
      "a b",
      "web/1",
      "wéb",
      "a$(id)",
    ]) {
      expect(VmName.safeParse(bad).success, bad).to.equal(false);
    }
  });

  it("keeps existing short names as they are (no replacement on upgrade)", () => {
    for (const n of ["web1", "cache2", "api1", "a", "abcdefghij"])
      expect(vmKey(n)).to.equal(n);
    expect(derivedNames("web1")).to.include({
      netns: "vm-web1",
      hostPort: "hv-web1",
      tap: "tap-web1",
      macvlan: "mv-web1",
      guestNetns: "guest-web1",
    });
  });

  it("derives a readable prefix and a stable hash for long or mixed-case names, within 15 bytes", () => {
    const k = vmKey("k8s-worker-prod-017");
    expect(k).to.match(/^k8s-[0-9a-f]{5}$/);
    expect(vmKey("k8s-worker-prod-017")).to.equal(k);
    expect(vmKey("k8s-worker-prod-018")).to.not.equal(k);
    expect(vmKey("Web1")).to.match(/^web1-[0-9a-f]{5}$/);
    expect(vmKey("___")).to.match(/^vm-[0-9a-f]{5}$/);
    for (const name of [
      "k8s-worker-prod-017",
      "3f2a9c1e-8b7d-4e2f-9a1b-0c4d5e6f7a8b",
      "x".repeat(63),
      "DB_01.eu",
    ]) {
      const n = derivedNames({ name });
      for (const ifname of [n.hostPort, n.tap, n.macvlan])
        expect(Buffer.byteLength(ifname), ifname).to.be.at.most(15);
    }
  });

  it("an ifname overrides the derived key; a bad ifname is refused naming the field", () => {
    expect(vmKey({ name: "k8s-worker-prod-017", ifname: "w17" })).to.equal(
      "w17",
    );
    expect(
      derivedNames({ name: "k8s-worker-prod-017", ifname: "w17" }).hostPort,
    ).to.equal("hv-w17");
    const r = VmSpec.safeParse({
      name: "x",
      ifname: "much-too-long",
      host: "h",
      mac: "02:00:00:00:00:01",
      ipv4: ["198.19.1.1/24"],
      attachment: "routed",
    });
    expect(r.success).to.equal(false);
    expect(JSON.stringify(r.error?.issues)).to.include("ifname");
  });

  it("reports VMs of one host whose interface names would collide, and not across hosts", () => {
    const vm = (name: string, host: string, i: number, ifname?: string) => ({
      name,
      host,
      ifname,
      attachment: "routed",
      mac: `02:00:00:00:00:0${i}`,
      ipv4: [`198.19.1.${i}/32`],
    });
    const long = "k8s-worker-prod-017";
    const config = StackConfig.parse({
      hosts: [
        { name: "h1", address: "192.0.2.1" },
        { name: "h2", address: "192.0.2.2" },
      ],
      vms: [
        vm("web1", "h1", 1),
        vm("web-frontend-a", "h1", 2, "web1"),
        vm(long, "h1", 3),
        vm(vmKey(long), "h1", 4),
        vm("web1", "h2", 5),
      ].map((v) => (v.ifname ? v : { ...v, ifname: undefined })),
    });
    const problems = crossCheck(config).filter((p) =>
      p.includes("interface names"),
    );
    expect(problems).to.have.length(2);
    expect(problems[0]).to.match(
      /^vms\[1\]\.ifname: its interface names \(hv-web1, vm-web1, \.\.\.\) are those of vms\[0\] \(web1\) on host h1/,
    );
    expect(problems[1]).to.match(
      /^vms\[3\]\.name: .* are those of vms\[2\] \(k8s-worker-prod-017\) on host h1; give one of them another ifname/,
    );
  });
});
