"use strict";
module.exports = require("./dispatch")("MacvlanPort");
