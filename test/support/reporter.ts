// mocha's spec reporter plus the closing line CI reads: "N passed, N failed, N skipped".
import * as Mocha from "mocha";

const { EVENT_RUN_END, EVENT_TEST_PENDING } = Mocha.Runner.constants;

class HostnetReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const skipped: string[] = [];
    runner.on(EVENT_TEST_PENDING, (t: Mocha.Test) =>
      skipped.push(t.fullTitle()),
    );
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
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
