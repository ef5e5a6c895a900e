import { expect } from "chai";
import { asDeclared, repeats, sameSet } from "../../providers/kinds/lists";

describe("kinds/lists: set-like lists", () => {
  it("repeats: maps each repeat to its first occurrence, nothing for unique items", () => {
    expect([...repeats(["a", "b", "a", "c", "b", "a"])]).to.deep.equal([
      [2, 0],
      [4, 1],
      [5, 0],
    ]);
    expect(repeats(["a", "b"]).size).to.equal(0);
    expect(repeats([]).size).to.equal(0);
  });

  it("sameSet ignores order, not multiplicity", () => {
    expect(sameSet(["b", "a"], ["a", "b"])).to.equal(true);
    expect(sameSet(["a"], ["a", "a"])).to.equal(false);
    expect(sameSet(["a"], ["b"])).to.equal(false);
  });

  it("asDeclared reads a matching live list back in the declared order, else sorted", () => {
    expect(asDeclared(["z", "a"], ["a", "z"])).to.deep.equal(["z", "a"]);
    expect(asDeclared(["z", "a"], ["q", "a"])).to.deep.equal(["a", "q"]);
  });
});
