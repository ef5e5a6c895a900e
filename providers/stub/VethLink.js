"use strict";
module.exports = require("./dispatch")("VethLink");
