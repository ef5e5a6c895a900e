"use strict";
module.exports = require("./dispatch")("VmNetns");
