"use strict";
module.exports = require("./dispatch")("HostHealth");
