"use strict";
module.exports = require("./dispatch")("BootRestore");
