"use strict";
module.exports = require("./dispatch")("HostBridge");
