import { expect } from "chai";
import {
  isHostnetMark,
  isOwnerToken,
  judgeMark,
  ownerMark,
  ownerToken,
  OWNER_ALIAS,
} from "../../providers/state";
import { CommonProps } from "../../providers/kinds/kind";
import { diff } from "../../providers/runtime";
import { ownedScript } from "../../providers/kinds/filterChain";

describe("ownership marks", () => {
  const mine = ownerToken("hostnet", "lab", "VethLink", "web1-veth");

  it("an owner token is stable, 8+10 hex digits, and differs by stack, kind and name", () => {
    expect(mine).to.match(/^[0-9a-f]{8}-[0-9a-f]{10}$/);
    expect(ownerToken("hostnet", "lab", "VethLink", "web1-veth")).to.equal(
      mine,
    );
    const others = [
      ownerToken("hostnet", "prod", "VethLink", "web1-veth"),
      ownerToken("hostnet", "lab", "TapPort", "web1-veth"),
      ownerToken("hostnet", "lab", "VethLink", "web2-veth"),
      ownerToken("other", "lab", "VethLink", "web1-veth"),
    ];
    expect(new Set([mine, ...others]).size).to.equal(5);
    // Same stack: same first part; another stack: another first part.
    expect(others[1].slice(0, 8)).to.equal(mine.slice(0, 8));
    expect(others[0].slice(0, 8)).to.not.equal(mine.slice(0, 8));
  });

  it("the mark is hostnet:<token>, and the plain legacy alias without a token", () => {
    expect(ownerMark(mine)).to.equal(`hostnet:${mine}`);
    expect(ownerMark(undefined)).to.equal(OWNER_ALIAS);
  });

  it("recognises new and legacy marks as hostnet's, and nothing else", () => {
    expect(isHostnetMark(ownerMark(mine))).to.equal(true);
    expect(isHostnetMark("hostnet")).to.equal(true);
    for (const m of [
      undefined,
      "",
      "Hostnet",
      "hostnet:",
      "hostnet:xyz",
      `hostnet:${mine}x`,
      "uplink to rack 3",
    ]) {
      expect(isHostnetMark(m), String(m)).to.equal(false);
    }
  });

  it("judges a found object: this resource, this stack, another stack or release, or a stranger", () => {
    const sameStack = ownerToken("hostnet", "lab", "VmNetns", "web1-ns");
    const otherStack = ownerToken("hostnet", "prod", "VethLink", "web1-veth");
    expect(judgeMark(ownerMark(mine), mine)).to.equal("mine");
    expect(judgeMark(ownerMark(sameStack), mine)).to.equal("stack");
    expect(judgeMark(ownerMark(otherStack), mine)).to.equal("hostnet");
    expect(judgeMark("hostnet", mine)).to.equal("hostnet");
    expect(judgeMark(undefined, mine)).to.equal("none");
    expect(judgeMark("made by hand", mine)).to.equal("none");
    // A resource of an older program has no token: nothing is ever "mine".
    expect(judgeMark(ownerMark(mine), undefined)).to.equal("hostnet");
  });

  it("the token input is validated, and a diff never compares it (existing stacks see no change)", async () => {
    expect(isOwnerToken(mine)).to.equal(true);
    const base = { connection: { host: "198.18.1.10" } };
    expect(
      CommonProps.safeParse({ ...base, ownerToken: mine }).success,
    ).to.equal(true);
    const bad = CommonProps.safeParse({ ...base, ownerToken: "x; rm -rf /" });
    expect(bad.success).to.equal(false);
    expect(bad.success ? "" : String(bad.error.issues[0].path)).to.equal(
      "ownerToken",
    );
    const olds = { ...base, name: "vm-a", sysctls: {}, loopbackUp: true };
    const r = await diff("VmNetns", "netns/vm-a", olds, {
      ...olds,
      ownerToken: mine,
    });
    expect(r.changes).to.equal(false);
  });

  it("a filter table carries the resource's mark in its comment", () => {
    const p = {
      table: "hostnet",
      ports: [
        {
          port: "tap0",
          policy: "clean-traffic",
          mac: "52:54:00:00:00:01",
          ipv4: ["198.18.1.50"],
        },
      ],
    };
    const { script } = ownedScript(p as never, ownerMark(mine));
    expect(script).to.match(
      new RegExp(`table bridge hostnet \\{\\n\\tcomment "hostnet:${mine}"\\n`),
    );
    expect(ownedScript(p as never).script).to.match(
      /table bridge hostnet \{\n\tcomment "hostnet"\n/,
    );
  });
});
