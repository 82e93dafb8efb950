// Prints where a `cargo build --timings` went: the ten slowest compilation units and the ten
// crates with the most compile time (all their units together), from cargo's timing report.
// Usage: node scripts/timings-top.mjs target/cargo-timings/cargo-timing.html
import { readFileSync } from "node:fs";

const path = process.argv[2];
const html = readFileSync(path, "utf8");
const start = html.indexOf("const UNIT_DATA = ");
const end = html.indexOf("];", start);
if (start < 0 || end < 0) {
    console.error(`${path}: no UNIT_DATA in this timing report`);
    process.exit(1);
}
const units = JSON.parse(html.slice(start + "const UNIT_DATA = ".length, end + 1));
const total = units.reduce((s, u) => s + u.duration, 0);
const wall = Math.max(...units.map((u) => u.start + u.duration));
const row = (name, secs) => `  ${name.padEnd(52)} ${secs.toFixed(0).padStart(6)} s`;

console.log(`${units.length} units, ${(total / 60).toFixed(1)} CPU-minutes of rustc, ${(wall / 60).toFixed(1)} minutes wall`);
console.log("slowest units:");
for (const u of [...units].sort((a, b) => b.duration - a.duration).slice(0, 10)) {
    console.log(row(`${u.name}${u.target}`, u.duration));
}
const crates = new Map();
for (const u of units) crates.set(u.name, (crates.get(u.name) ?? 0) + u.duration);
console.log("crates by time (all their units):");
for (const [name, secs] of [...crates].sort((a, b) => b[1] - a[1]).slice(0, 10)) {
    console.log(row(name, secs));
}
