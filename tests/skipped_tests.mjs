#!/usr/bin/env node
// Lists and counts the tests a suite run skipped: ctest shows a GTEST_SKIP as passed, and the
// Node test runner only counts its skips. It reads the reports in REPORT_DIR: GoogleTest's JSON
// (<binary>.json; GTEST_OUTPUT is set in tests/CMakeLists.txt) and the Node runner's TAP (node.tap).
// With ALLM_FAIL_ON_SKIP=1 (CI sets it: .ci/run) a skipped test fails the run unless
// tests/allowed-skips.txt lists it with the reason CI cannot or need not run it.
//
//   node tests/skipped_tests.mjs REPORT_DIR
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ALLOW_LIST = path.join(path.dirname(fileURLToPath(import.meta.url)), 'allowed-skips.txt');

// {report, name, reason} of each test a GoogleTest JSON report marks skipped.
function gtestSkips(file) {
  const report = path.basename(file, '.json');
  const skips = [];
  for (const suite of JSON.parse(fs.readFileSync(file, 'utf8')).testsuites) {
    for (const test of suite.testsuite) {
      if (test.result !== 'SKIPPED') continue;
      // GoogleTest 1.12 (Debian 12) writes no skip message: the test's place says where to look.
      const message = (test.skipped || []).map((s) => s.message).join(' ').trim();
      skips.push({ report, name: `${suite.name}.${test.name}`, reason: message || `${test.file}:${test.line}` });
    }
  }
  return skips;
}

// The same from the Node runner's TAP: "ok N - NAME # SKIP REASON", the test's name prefixed with
// its describe() blocks ("# Subtest:" lines, four spaces deeper per level).
function tapSkips(file) {
  const skips = [];
  const names = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const subtest = /^( *)# Subtest: (.*)$/.exec(line);
    if (subtest) {
      names.length = subtest[1].length / 4;
      names.push(subtest[2]);
      continue;
    }
    const skip = /^( *)ok \d+ - .*? # SKIP(?: (.*))?$/.exec(line);
    if (skip) {
      const depth = skip[1].length / 4;
      skips.push({ report: 'node', name: names.slice(0, depth + 1).join(' > '), reason: skip[2] || '' });
    }
  }
  return skips;
}

// "REPORT | TEST | REASON" lines; '#' starts a comment line.
function allowList() {
  const allowed = new Map();
  for (const [i, line] of fs.readFileSync(ALLOW_LIST, 'utf8').split('\n').entries()) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const [report, name, reason] = line.split('|').map((s) => s.trim());
    if (!report || !name || !reason) {
      throw new Error(`${ALLOW_LIST}:${i + 1}: expected "REPORT | TEST | REASON", got: ${line}`);
    }
    allowed.set(`${report} ${name}`, reason);
  }
  return allowed;
}

function main() {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: node tests/skipped_tests.mjs REPORT_DIR');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : [];
  const gtestReports = files.filter((f) => f.endsWith('.json'));
  // Without reports every skip would pass unseen: a build configured before GTEST_OUTPUT was set,
  // or ctest not run.
  if (gtestReports.length === 0) throw new Error(`no GoogleTest reports in ${dir}`);
  const skips = [
    ...gtestReports.flatMap(gtestSkips),
    ...files.filter((f) => f.endsWith('.tap')).flatMap(tapSkips),
  ];
  const allowed = allowList();
  const failOnSkip = process.env.ALLM_FAIL_ON_SKIP === '1';
  let refused = 0;
  console.log(`skipped tests: ${skips.length}`);
  for (const s of skips) {
    const allowedBecause = allowed.get(`${s.report} ${s.name}`);
    if (!allowedBecause && failOnSkip) refused++;
    const note = allowedBecause ? `allowed: ${allowedBecause}` : failOnSkip ? 'NOT ALLOWED' : 'not on the allow-list';
    console.log(`  ${s.report}: ${s.name} (${s.reason || 'no reason given'}) [${note}]`);
  }
  if (refused > 0) {
    console.error(`${refused} test(s) skipped that CI must run (ALLM_FAIL_ON_SKIP=1); ` +
      `give them what they need, or list them in ${path.relative(process.cwd(), ALLOW_LIST)} with the reason`);
    process.exit(1);
  }
}

try {
  main();
} catch (e) {
  console.error(`skipped_tests: ${e.message}`);
  process.exit(1);
}
