import { expect } from "chai";
import * as crypto from "crypto";
import {
  Connection,
  expectedFingerprints,
  fingerprintOf,
  knownHostsFingerprints,
} from "../../providers/transport";
import { formatIssues } from "../../providers/schema";

const blob = Buffer.from(
  "AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE",
  "base64",
);
const keyLine = `ssh-ed25519 ${blob.toString("base64")}`;
const fp = fingerprintOf(blob);

describe("ssh: connection validation and host-key pinning", () => {
  const good = { host: "198.18.0.11", privateKey: "KEY", hostKey: keyLine };

  it("computes OpenSSH-style SHA256 fingerprints", () => {
    expect(fp).to.match(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(fp).to.equal(
      "SHA256:" +
        crypto
          .createHash("sha256")
          .update(blob)
          .digest("base64")
          .replace(/=+$/, ""),
    );
  });

  it("accepts a pinned key line or fingerprint and applies defaults", () => {
    const c = Connection.parse(good);
    expect(c).to.include({
      port: 22,
      user: "root",
      sudo: false,
      trustOnFirstUse: false,
    });
    expect(expectedFingerprints(c)).to.deep.equal([fp]);
    expect(
      expectedFingerprints(Connection.parse({ ...good, hostKey: fp })),
    ).to.deep.equal([fp]);
  });

  it("refuses a connection with no pin unless trust-on-first-use is explicit", () => {
    const r = Connection.safeParse({ host: "h1", privateKey: "KEY" });
    expect(r.success).to.equal(false);
    expect(formatIssues(r.error!, "connection").join("\n")).to.match(
      /connection\.hostKey: pin the host key/,
    );
    expect(
      Connection.safeParse({
        host: "h1",
        privateKey: "KEY",
        trustOnFirstUse: true,
      }).success,
    ).to.equal(true);
  });

  it("refuses hostile hosts, users and unknown fields, naming the field", () => {
    for (const [field, value] of [
      ["host", "h; reboot"],
      ["host", "$(id)"],
      ["user", "root\nid"],
      ["port", 70000],
      ["hostKey", "ssh-ed25519 AAAA$(id)"],
    ] as const) {
      const r = Connection.safeParse({ ...good, [field]: value });
      expect(r.success, `${field}=${value}`).to.equal(false);
      expect(formatIssues(r.error!, "connection").join("\n")).to.include(
        `connection.${field}`,
      );
    }
    expect(Connection.safeParse({ ...good, command: "x" }).success).to.equal(
      false,
    );
  });

  it("finds plain, [host]:port and hashed known_hosts entries", () => {
    const salt = crypto.randomBytes(20);
    const hash = crypto
      .createHmac("sha1", salt)
      .update("198.19.2.3")
      .digest("base64");
    const text = [
      "# comment",
      `198.18.0.11 ${keyLine}`,
      `[198.18.0.12]:2222 ${keyLine}`,
      `|1|${salt.toString("base64")}|${hash} ${keyLine}`,
      `other.example ${keyLine}`,
    ].join("\n");
    expect(knownHostsFingerprints(text, "198.18.0.11", 22)).to.deep.equal([fp]);
    expect(knownHostsFingerprints(text, "198.18.0.12", 2222)).to.deep.equal([
      fp,
    ]);
    expect(knownHostsFingerprints(text, "198.18.0.12", 22)).to.deep.equal([]);
    expect(knownHostsFingerprints(text, "198.19.2.3", 22)).to.deep.equal([fp]);
  });
});
