// The runners' removal of a dead run's stack lock (scripts/staleLock.ts), on a scratch file backend.
import { expect } from "chai";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { clearDeadRunLocks } from "../../scripts/staleLock";

describe("stale stack locks", () => {
  let root: string;
  let dir: string;
  const write = (name: string, content: object) =>
    fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(content));
  const left = () => fs.readdirSync(dir).sort();

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "hn-locks-"));
    dir = path.join(root, ".pulumi", "locks", "organization", "hostnet", "s1");
    fs.mkdirSync(dir, { recursive: true });
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it("removes only the lock of a process of this machine that is gone", () => {
    const dead = spawnSync("true").pid!; // has exited by now
    const stamp = "2026-11-30T00:00:00Z";
    write("dead", { pid: dead, hostname: os.hostname(), timestamp: stamp });
    write("live", {
      pid: process.pid,
      hostname: os.hostname(),
      timestamp: stamp,
    });
    write("elsewhere", {
      pid: dead,
      hostname: `not-${os.hostname()}`,
      timestamp: stamp,
    });
    fs.writeFileSync(path.join(dir, "garbled.json"), "{");
    const said = clearDeadRunLocks(`file://${root}`, "hostnet", "s1");
    expect(left()).to.deep.equal([
      "elsewhere.json",
      "garbled.json",
      "live.json",
    ]);
    expect(said).to.have.length(1);
    expect(said[0]).to.include(`pid ${dead}`).and.include("stack s1");
  });

  it("leaves backends that are not a directory alone, and a stack without locks is fine", () => {
    write("dead", { pid: spawnSync("true").pid, hostname: os.hostname() });
    expect(
      clearDeadRunLocks("postgres://u:p@127.0.0.1/pulumi", "hostnet", "s1"),
    ).to.deep.equal([]);
    expect(
      clearDeadRunLocks(`file://${root}`, "hostnet", "other"),
    ).to.deep.equal([]);
    expect(left()).to.deep.equal(["dead.json"]);
  });
});
