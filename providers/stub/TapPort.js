"use strict";
module.exports = require("./dispatch")("TapPort");
