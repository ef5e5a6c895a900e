"use strict";
module.exports = require("./dispatch")("FdbEntry");
