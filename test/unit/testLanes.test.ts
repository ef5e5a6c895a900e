import { expect } from "chai";
import { assignLanes, closingCounts, fileTimes } from "../../scripts/testLanes";

describe("test lanes (scripts/testLanes.ts)", () => {
  const secs = {
    "a.test.js": 100,
    "b.test.js": 80,
    "c.test.js": 60,
    "d.test.js": 50,
    "lab.test.js": 6,
  };
  const files = [
    "x/a.test.js",
    "x/b.test.js",
    "x/c.test.js",
    "x/d.test.js",
    "x/lab.test.js",
  ];

  it("puts the lab test first in lane 0 (its time counts there) and the rest longest-first on the least-loaded lane", () => {
    const lanes = assignLanes(files, secs, 2);
    expect(lanes.map((l) => l.files)).to.deep.equal([
      ["x/lab.test.js", "x/b.test.js", "x/c.test.js"],
      ["x/a.test.js", "x/d.test.js"],
    ]);
    expect(lanes.map((l) => l.seconds)).to.deep.equal([146, 150]);
  });

  it("with one lane keeps every file, the lab test first", () => {
    const [only] = assignLanes(files, secs, 1);
    expect(only.files[0]).to.equal("x/lab.test.js");
    expect([...only.files].sort()).to.deep.equal([...files].sort());
  });

  it("charges a file missing from the table 60 s", () => {
    const lanes = assignLanes(
      ["x/new.test.js", "x/b.test.js", "x/d.test.js"],
      secs,
      2,
    );
    expect(lanes.map((l) => l.files)).to.deep.equal([
      ["x/b.test.js"],
      ["x/new.test.js", "x/d.test.js"],
    ]);
    expect(lanes.map((l) => l.seconds)).to.deep.equal([80, 110]);
  });

  it("keeps a same-lane group together, charged as one unit", () => {
    const lanes = assignLanes(
      ["x/a.test.js", "x/b.test.js", "x/c.test.js", "x/d.test.js"],
      secs,
      2,
      [["c.test.js", "d.test.js"]],
    );
    expect(lanes.map((l) => l.files)).to.deep.equal([
      ["x/c.test.js", "x/d.test.js"],
      ["x/a.test.js", "x/b.test.js"],
    ]);
    expect(lanes.map((l) => l.seconds)).to.deep.equal([110, 180]);
  });

  it("reads the reporter's last closing count, or none when the run died before it", () => {
    expect(
      closingCounts(
        "1 passed, 0 failed, 0 skipped\nmore\n12 passed, 3 failed, 1 skipped\n",
      ),
    ).to.deep.equal({
      passed: 12,
      failed: 3,
      skipped: 1,
    });
    expect(
      closingCounts("  [lane 1] 4 passed, 0 failed, 0 skipped\n"),
    ).to.equal(undefined);
  });

  it("reads the per-file times block and nothing after it", () => {
    const out = [
      "  ✔ something",
      "time per test file (s):",
      "     272  reliability.test.js",
      "       6  lab.test.js",
      "skipped (not counted as passed):",
      "     999  not.test.js",
    ].join("\n");
    expect([...fileTimes(out)]).to.deep.equal([
      ["reliability.test.js", 272],
      ["lab.test.js", 6],
    ]);
  });
});
