import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import {
  argvToShell,
  batchLine,
  heredoc,
  nftString,
  shellQuote,
} from "../../providers/transport";

// Round trips run through real local shells: the only oracle that matters for quoting.
const SHELLS = ["/bin/sh", "/bin/bash"].filter((sh) => existsSync(sh));

function runShell(sh: string, script: string): string {
  return execFileSync(sh, ["-c", script], { encoding: "utf8" });
}

const ALL_ASCII = Array.from({ length: 127 }, (_, i) =>
  String.fromCharCode(i + 1),
).join("");

const NASTY = [
  "",
  "plain",
  "a b",
  "  leading and trailing  ",
  "; rm -rf /",
  "$(reboot)",
  "`id`",
  "${HOME}",
  "$HOME",
  "a\nb",
  "trailing newline\n",
  "\n\n",
  "a'b",
  "'",
  "''",
  "'\\''",
  'a"b',
  "\\",
  "a\\nb",
  "\t",
  "*",
  "?",
  "[a-z]",
  "{a,b}",
  "~",
  "~root",
  "!",
  "!!",
  "#comment",
  "a#b",
  "&",
  "|",
  "<>",
  "a=b",
  "%1",
  "-n",
  "--",
  "-e \\n",
  "é ü ∂ 日本",
  "eth0é",
  "\x7f\x01\x1b[31m",
  ALL_ASCII,
  "x".repeat(10_000),
];

describe("shell: shellQuote", () => {
  const table: [string, string][] = [
    ["", "''"],
    ["abc", "abc"],
    ["/usr/sbin/ip", "/usr/sbin/ip"],
    ["user@host:/p,q=r+s%t-u_v.w", "user@host:/p,q=r+s%t-u_v.w"],
    ["a b", "'a b'"],
    ["it's", "'it'\\''s'"],
    ["$x", "'$x'"],
    ["~", "'~'"],
  ];
  for (const [input, output] of table) {
    it(`quotes ${JSON.stringify(input)} as ${output}`, () =>
      expect(shellQuote(input)).to.equal(output));
  }

  it("throws on a NUL byte", () => {
    expect(() => shellQuote("a\0b")).to.throw(/NUL/);
  });

  it("throws on a non-string at runtime", () => {
    expect(() => shellQuote(undefined as unknown as string)).to.throw(
      /expected a string, got undefined/,
    );
  });

  for (const sh of SHELLS) {
    it(`round-trips ${NASTY.length} nasty strings through ${sh} printf`, () => {
      for (const s of NASTY) {
        expect(
          runShell(sh, "printf %s " + shellQuote(s)),
          JSON.stringify(s),
        ).to.equal(s);
      }
    });
  }
});

describe("shell: argvToShell", () => {
  it("quotes each element and joins with a space", () => {
    expect(argvToShell(["ip", "link", "set", "dev", "veth0", "up"])).to.equal(
      "ip link set dev veth0 up",
    );
    expect(argvToShell(["echo", "a b", ""])).to.equal("echo 'a b' ''");
  });

  it("quotes command words the shell would otherwise treat specially", () => {
    expect(argvToShell(["FOO=bar"])).to.equal("'FOO=bar'");
    expect(argvToShell(["if"])).to.equal("'if'");
    expect(argvToShell(["%1"])).to.equal("'%1'");
    expect(argvToShell(["echo", "if", "a=b"])).to.equal("echo if a=b");
  });

  it("throws on empty argv and on NUL", () => {
    expect(() => argvToShell([])).to.throw(/non-empty/);
    expect(() => argvToShell(["echo", "a\0"])).to.throw(/NUL/);
  });

  for (const sh of SHELLS) {
    it(`reaches the command as exactly the same argv via ${sh}`, () => {
      const out = runShell(sh, argvToShell(["printf", "%s\\0", ...NASTY]));
      expect(out.split("\0").slice(0, -1)).to.deep.equal(NASTY);
    });
  }
});

describe("shell: batchLine", () => {
  it("joins valid tokens with a single space", () => {
    expect(
      batchLine(["link", "set", "dev", "veth0", "master", "br-vm1"]),
    ).to.equal("link set dev veth0 master br-vm1");
    expect(
      batchLine([
        "fdb",
        "add",
        "52:54:00:12:34:56",
        "dev",
        "vx0",
        "dst",
        "fd00::1",
      ]),
    ).to.equal("fdb add 52:54:00:12:34:56 dev vx0 dst fd00::1");
  });

  const rejected: [string, RegExp][] = [
    ["", /token 2 "" is empty/],
    ["a b", /contains a space/],
    ["a\tb", /contains character U\+0009/],
    ["a\nb", /contains character U\+000A/],
    ["a\rb", /contains character U\+000D/],
    ["a\0b", /contains character U\+0000/],
    ['a"b', /contains '"'/],
    ["a'b", /contains '''/],
    ["a\\b", /contains '\\'/],
    ["#x", /contains '#'/],
    ["eth0#1", /contains '#'/],
    ["é", /contains character U\+00E9/],
    ["a\x7fb", /contains character U\+007F/],
  ];
  for (const [token, message] of rejected) {
    it(`rejects token ${JSON.stringify(token)}, naming it`, () => {
      const call = () => batchLine(["link", "show", token]);
      expect(call).to.throw(message);
      expect(call).to.throw(`token 2 ${JSON.stringify(token)}`);
    });
  }

  it("rejects an empty token list", () => {
    expect(() => batchLine([])).to.throw(/non-empty/);
  });
});

describe("shell: heredoc", () => {
  it("wraps the body in a quoted here-document", () => {
    expect(heredoc("hello")).to.equal("<<'HN_EOF_0'\nhello\nHN_EOF_0");
  });

  it("picks a tag that does not appear as a line in the body", () => {
    expect(heredoc("HN_EOF_0\nx")).to.equal(
      "<<'HN_EOF_1'\nHN_EOF_0\nx\nHN_EOF_1",
    );
    expect(heredoc("HN_EOF_0\nHN_EOF_1 \n HN_EOF_2")).to.match(
      /^<<'HN_EOF_3'\n/,
    );
    expect(heredoc("a HN_EOF_0 b")).to.match(/^<<'HN_EOF_0'\n/); // not a whole line
  });

  it("honours an explicit tag, and refuses a colliding or malformed one", () => {
    expect(heredoc("x", "NFT")).to.equal("<<'NFT'\nx\nNFT");
    expect(() => heredoc("a\nNFT\nb", "NFT")).to.throw(/appears as a line/);
    expect(() => heredoc("x", "bad tag")).to.throw(/must match/);
    expect(() => heredoc("x", "E'OF")).to.throw(/must match/);
  });

  it("throws on NUL", () => {
    expect(() => heredoc("a\0b")).to.throw(/NUL/);
  });

  for (const sh of SHELLS) {
    it(`delivers the body verbatim through ${sh}`, () => {
      const bodies = [
        "$(reboot) `id` $HOME ${x} \\ \\n 'q' \"d\"",
        "HN_EOF_0\nHN_EOF_1\nEOF",
        "line1\n\nline3\n",
        "",
        ALL_ASCII.replace(/\n/g, ""),
      ];
      for (const body of bodies) {
        expect(
          runShell(sh, "cat " + heredoc(body) + "\n"),
          JSON.stringify(body),
        ).to.equal(body + "\n");
      }
    });
  }
});

describe("shell: nftString", () => {
  it("double-quotes valid strings", () => {
    expect(nftString("veth0")).to.equal('"veth0"');
    expect(nftString("vm-*")).to.equal('"vm-*"');
    expect(nftString("a b")).to.equal('"a b"');
  });

  const rejected: [string, RegExp][] = [
    ['a"b', /contains '"'/],
    ["a\\b", /contains '\\'/],
    ["a\nb", /U\+000A/],
    ["a\x01", /U\+0001/],
    ["é", /U\+00E9/],
    ["", /must not be empty/],
  ];
  for (const [input, message] of rejected) {
    it(`rejects ${JSON.stringify(input)}`, () =>
      expect(() => nftString(input)).to.throw(message));
  }
});
