"use strict";
module.exports = require("./dispatch")("RolloutGate");
