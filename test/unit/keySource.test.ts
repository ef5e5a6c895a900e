// The SSH key by reference (issue 10, small state): the connection schema's key sources, where the
// provider process finds the key, which updates touch no host, and the state-size report.
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  configureStack,
  Connection,
  privateKeyOf,
} from "../../providers/transport";
import { formatIssues } from "../../providers/schema";
import { kindOf, onlyKeySourceChanged } from "../../providers/runtime/props";
import { hostConnection, parseStackConfig } from "../../stacks/config";
import { stateSize } from "../../bench/stateSize";

const hostKey =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE";

function problems(input: unknown): string[] {
  const r = Connection.safeParse(input);
  return r.success ? [] : formatIssues(r.error);
}

describe("key source: the SSH key by reference, never stored per resource", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hostnet-keysource-"));
  const keyFile = path.join(dir, "id_test");
  before(() => fs.writeFileSync(keyFile, "KEY-FROM-FILE\n"));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("accepts exactly one key source, and names the field when it is wrong", () => {
    expect(
      problems({ host: "h1", hostKey, privateKeyFile: keyFile }),
    ).to.deep.equal([]);
    expect(
      problems({ host: "h1", hostKey, privateKeyConfig: "hostnet:privateKey" }),
    ).to.deep.equal([]);
    expect(
      problems({ host: "h1", hostKey, privateKeyFile: "id_test" }),
    ).to.deep.equal([
      "privateKeyFile: privateKeyFile must be an absolute path",
    ]);
    expect(
      problems({ host: "h1", hostKey, privateKeyConfig: "privateKey" }).join(),
    ).to.match(/^privateKeyConfig: .*hostnet:privateKey/);
    expect(
      problems({
        host: "h1",
        hostKey,
        privateKey: "K",
        privateKeyFile: keyFile,
      }),
    ).to.deep.equal([
      "privateKey: give only one of privateKey, privateKeyFile and privateKeyConfig",
    ]);
    expect(problems({ host: "h1", hostKey }).join()).to.match(
      /^privateKey: give privateKeyFile or privateKeyConfig/,
    );
  });

  it("reads the key from the named file or stack config secret when a session connects", () => {
    expect(privateKeyOf({ privateKeyFile: keyFile }, "root@h1:22")).to.equal(
      "KEY-FROM-FILE\n",
    );
    expect(privateKeyOf({ privateKey: "TEXT" }, "root@h1:22")).to.equal("TEXT");
    expect(privateKeyOf({}, "root@h1:22")).to.equal(undefined); // the agent
    configureStack({
      get: (k) => (k === "hostnet:privateKey" ? "KEY-FROM-CONFIG" : undefined),
    });
    expect(
      privateKeyOf({ privateKeyConfig: "hostnet:privateKey" }, "root@h1:22"),
    ).to.equal("KEY-FROM-CONFIG");
  });

  it("says what is missing, that nothing ran, and how to fix it", () => {
    expect(() =>
      privateKeyOf({ privateKeyFile: path.join(dir, "absent") }, "root@h1:22"),
    ).to.throw(
      /root@h1:22: cannot read the SSH key file .*absent.*Nothing was run on the host/,
    );
    configureStack({ get: () => undefined });
    expect(() =>
      privateKeyOf({ privateKeyConfig: "hostnet:privateKey" }, "root@h1:22"),
    ).to.throw(
      /stack config secret hostnet:privateKey .* no such value\. Nothing was run.*pulumi config set --secret hostnet:privateKey/,
    );
  });

  it("an update that only changes the key source is not a change on the host", () => {
    const kind = kindOf("VmNetns");
    const conn = {
      host: "198.18.5.11",
      port: 22,
      user: "root",
      hostKey,
      sudo: false,
    };
    const olds = {
      name: "vm-a",
      connection: conn,
      credentials: { privateKey: "TEXT" },
    };
    const news = {
      name: "vm-a",
      connection: { ...conn, privateKeyFile: keyFile },
    };
    expect(onlyKeySourceChanged(kind, olds, news)).to.equal(true);
    expect(
      onlyKeySourceChanged(kind, olds, {
        ...news,
        connection: { ...news.connection, user: "hnlab" },
      }),
    ).to.equal(false);
    expect(
      onlyKeySourceChanged(kind, olds, { ...news, name: "vm-b" }),
    ).to.equal(false);
    // Nothing changed at all: an update a kind's live recheck asked for (HostHealth), which runs.
    expect(onlyKeySourceChanged(kind, news, { ...news })).to.equal(false);
  });

  it("the stack's hosts carry the key reference, or the key text for tools", () => {
    const cfg = parseStackConfig({
      hosts: [{ name: "h1", address: "198.18.5.11", hostKey }],
      vms: [],
    });
    const h = cfg.hosts[0];
    const byRef = Connection.parse(
      hostConnection(h, { privateKeyFile: keyFile }),
    );
    expect(byRef.privateKeyFile).to.equal(keyFile);
    expect(byRef.privateKey).to.equal(undefined);
    expect(Connection.parse(hostConnection(h, "TEXT")).privateKey).to.equal(
      "TEXT",
    );
  });

  it("the state report counts bytes per resource, the largest fields and resources holding a secret", () => {
    const secret = {
      "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
      ciphertext: "v1:abc",
    };
    const state = {
      deployment: {
        resources: [
          {
            urn: "a",
            inputs: { big: "x".repeat(100) },
            outputs: { big: "x".repeat(100) },
          },
          { urn: "b", inputs: { credentials: secret }, outputs: {} },
        ],
      },
    };
    const s = stateSize(state);
    expect(s.resources).to.equal(2);
    expect(s.bytes).to.equal(JSON.stringify(state).length);
    expect(s.perResource).to.equal(Math.round(s.bytes / 2));
    expect(s.fields[0][0]).to.be.oneOf(["inputs.big", "outputs.big"]);
    expect(s.fields[0][1]).to.equal(102);
    expect(s.withSecrets).to.equal(1);
  });
});
