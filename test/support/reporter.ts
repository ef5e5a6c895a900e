// mocha's spec reporter plus the closing lines CI reads: how long each test file took (slowest
// first, so the next person trimming the suite knows where the time goes) and
// "N passed, N failed, N skipped".
import * as path from "path";
import * as Mocha from "mocha";

const { EVENT_RUN_END, EVENT_TEST_PENDING, EVENT_TEST_END, EVENT_HOOK_END } =
  Mocha.Runner.constants;

class HostnetReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const skipped: string[] = [];
    const perFile = new Map<string, number>();
    let last = Date.now();
    // Wall time since the previous test or hook ended is charged to the file of this one, so
    // hooks (lab setup, stack teardown) count where they run.
    const charge = (r: Mocha.Runnable) => {
      const now = Date.now();
      const file = r.file ? path.basename(r.file) : "(no file)";
      perFile.set(file, (perFile.get(file) ?? 0) + (now - last));
      last = now;
    };
    runner.on(EVENT_TEST_END, charge);
    runner.on(EVENT_HOOK_END, charge);
    runner.on(EVENT_TEST_PENDING, (t: Mocha.Test) =>
      skipped.push(t.fullTitle()),
    );
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      const files = [...perFile].sort((a, b) => b[1] - a[1]);
      console.log("time per test file (s):");
      for (const [file, ms] of files)
        console.log(`  ${(ms / 1000).toFixed(0).padStart(6)}  ${file}`);
      if (skipped.length > 0)
        console.log(
          `skipped (not counted as passed):\n  ${skipped.join("\n  ")}`,
        );
      console.log(
        `${s.passes} passed, ${s.failures} failed, ${s.pending} skipped`,
      );
    });
  }
}

export = HostnetReporter;
