// The release phase: records each migration in the app's storage, and leaves a link to / there, which
// `slipway storage` must not follow.
const fs = require("fs");
const storage = process.env.SLIPWAY_STORAGE;
fs.appendFileSync(`${storage}/migrations.log`, `${process.env.SLIPWAY_RELEASE} HOME=${process.env.HOME}\n`);
try { fs.symlinkSync("/", `${storage}/everything`); } catch (error) { if (error.code !== "EEXIST") throw error; }
console.log(`migrated for ${process.env.SLIPWAY_RELEASE}`);
