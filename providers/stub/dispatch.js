// The provider object of one hostnet resource kind. Every method loads the hostnet runtime of the
// checkout that runs the engine (HOSTNET_HOME, set by hostnet's launcher; else the working
// directory) and dispatches by kind, so the state carries no hostnet code.
"use strict";
const path = require("path");

function runtime() {
  return require(
    path.join(
      process.env.HOSTNET_HOME || process.cwd(),
      "dist",
      "providers",
      "runtime.js",
    ),
  );
}

module.exports = function dispatch(kind) {
  return {
    // The stack's config, from the engine: where a connection's privateKeyConfig key is found.
    // (A runtime of an older checkout has no configure and no privateKeyConfig.)
    configure: async (req) => {
      const r = runtime();
      if (typeof r.configure === "function") r.configure(req.config);
    },
    check: (olds, news) => runtime().check(kind, olds, news),
    diff: (id, olds, news) => runtime().diff(kind, id, olds, news),
    create: (inputs) => runtime().create(kind, inputs),
    read: (id, props) => runtime().read(kind, id, props),
    update: (id, olds, news) => runtime().update(kind, id, olds, news),
    delete: (id, props) => runtime().remove(kind, id, props),
  };
};
