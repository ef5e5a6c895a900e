// FilterChain's planner, pure: the whole table from nothing (marked, undo = delete), nothing to do
// when the live table is the one applied, one atomic re-apply on drift, the raw check first.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import {
  FilterChainProps,
  filterChainPlanner as planner,
  ownedScript,
} from "../../providers/kinds/filterChain";
import { diff } from "../../providers/runtime";
import { tableDigest } from "../../providers/kinds/nftTable";
import { NftRuleset, ownerMark, ownerToken } from "../../providers/state";
import { snapshotWith } from "../support/snapshotBuilder";

const owner = ownerToken("hostnet", "unit", "FilterChain", "fc");
// A ruleset captured from nftables 1.0.6 (test/fixtures): it holds `table bridge hostnet`.
const ruleset = NftRuleset.parse(
  JSON.parse(
    fs.readFileSync(
      path.resolve(__dirname, "../../../test/fixtures/nft-ruleset.hnfx-a.json"),
      "utf8",
    ),
  ),
);
const desired = FilterChainProps.parse({
  table: "hostnet",
  ports: [
    {
      port: "tap1",
      mac: "02:00:00:00:00:01",
      ipv4: ["192.0.2.1"],
      policy: "clean-traffic",
    },
  ],
});
const live = () =>
  planner.observe(snapshotWith({ "": { nft: ruleset } }), desired);

describe("FilterChain planner", () => {
  it("plans the whole table from nothing in one transaction, marked, undone by deleting it", () => {
    const steps = planner.plan(desired, undefined, { owner });
    expect(steps).to.have.length(1);
    const op = steps[0].op;
    expect(op.kind).to.equal("nft");
    if (op.kind !== "nft") return;
    expect(op.checkOnly).to.equal(undefined);
    expect(op.script).to.include(
      `table bridge hostnet {\n\tcomment "${ownerMark(owner)}"\n`,
    );
    expect(steps[0].undo).to.deep.include({ kind: "nft" });
    expect((steps[0].undo as { script: string }).script).to.include(
      "delete table bridge hostnet",
    );
  });

  it("checks raw rules with nft -c before the apply", () => {
    const steps = planner.plan(
      { ...desired, raw: "chain extra {\n}" },
      undefined,
      {},
    );
    expect(
      steps.map((s) => s.op.kind === "nft" && s.op.checkOnly === true),
    ).to.deep.equal([true, false]);
  });

  it("observes the live table as the digest of its canonical form", () => {
    expect(live()).to.deep.equal({
      digest: tableDigest(ruleset, "bridge", "hostnet"),
    });
    expect(
      planner.observe(snapshotWith({ "": { nft: ruleset } }), {
        ...desired,
        table: "other",
      }),
    ).to.equal(undefined);
    expect(planner.observe(snapshotWith({ "": {} }), desired)).to.equal(
      undefined,
    );
  });

  it("plans nothing when the live table is the one recorded at the last apply", () => {
    const applied = { ...desired, appliedDigest: live()!.digest };
    expect(planner.plan(applied, live(), { owner })).to.deep.equal([]);
  });

  it("re-applies the whole table when it drifted (or the inputs changed), with no undo", () => {
    const drifted = { ...desired, appliedDigest: "0".repeat(64) };
    const steps = planner.plan(drifted, live(), { owner });
    expect(steps).to.have.length(1);
    expect(steps[0].undo).to.equal(undefined);
    // An update plans from the new inputs, which carry no applied digest: always one apply.
    expect(planner.plan(desired, live(), { owner })).to.have.length(1);
  });
});

// A compiler fix must reach hosts without an input change: the diff compares the chains recorded
// at the last apply with the chains this compiler makes for the same inputs (kind.outdated).
describe("FilterChain applied by an older compiler", () => {
  const ports = [
    {
      port: "vnet0",
      policy: "clean-traffic",
      mac: "02:00:00:c8:00:01",
      ipv4: ["198.18.200.1"],
      rules: [{ direction: "from-vm", action: "accept", proto: "icmp" }],
    },
  ];
  const inputs = {
    connection: { host: "198.18.1.10" },
    table: "hostnet",
    ports,
  };
  const now = ownedScript(FilterChainProps.parse(inputs)).chains;

  it("is an update when its recorded chains differ (the port's own rules got their own chain)", async () => {
    const before = now.filter((c) => !c.endsWith("_rules"));
    expect(before).to.have.length(now.length - 1);
    const r = await diff(
      "FilterChain",
      "x",
      { ...inputs, chains: before },
      inputs,
    );
    expect(r.changes).to.equal(true);
    expect(r.replaces).to.deep.equal([]);
  });

  it("is no change when the chains are the ones this compiler makes, or were never recorded", async () => {
    for (const olds of [{ ...inputs, chains: now }, inputs])
      expect((await diff("FilterChain", "x", olds, inputs)).changes).to.equal(
        false,
      );
  });
});
