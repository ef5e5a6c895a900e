"use strict";
module.exports = require("./dispatch")("VxlanDevice");
