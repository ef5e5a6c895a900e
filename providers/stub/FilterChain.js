"use strict";
module.exports = require("./dispatch")("FilterChain");
