// A throwaway PostgreSQL cluster for the tests: initdb into a temp dir, trust authentication on
// 127.0.0.1 only, a free port, the socket in the temp dir. initdb and the server refuse to run
// as root (CI runs as root): there they run as Debian's `postgres` user.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from '../e2e/helpers.mjs';

const run = promisify(execFile);

// The newest server's bin dir (Debian: /usr/lib/postgresql/<major>/bin).
function postgresBinDir() {
  const root = '/usr/lib/postgresql';
  const majors = fs.existsSync(root)
    ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')))
    : [];
  if (majors.length === 0) {
    throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (scripts/install-system-deps.sh installs Debian\'s postgresql)');
  }
  majors.sort((a, b) => Number(b) - Number(a));
  return path.join(root, majors[0], 'bin');
}

export class PostgresCluster {
  // `fsync`: false (the tests' default) spares the disk; a benchmark wants what a real server does.
  constructor({ fsync = false } = {}) {
    this.fsync = fsync;
    this.bin = postgresBinDir();
    this.asRoot = process.getuid() === 0;
    this.dir = null;
    this.port = null;
  }

  get dataDir() { return path.join(this.dir, 'data'); }
  // The database the servers use, as an allm --store URI.
  get uri() { return `postgres://allm@127.0.0.1:${this.port}/allm`; }

  // Runs a PostgreSQL program, as the postgres user when we are root.
  async tool(name, args, opts = {}) {
    const exe = path.join(this.bin, name);
    const [cmd, argv] = this.asRoot ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
    return run(cmd, argv, { timeout: 60_000, ...opts });
  }

  async init() {
    this.dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'allm-pg-'));
    if (this.asRoot) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      const { stdout: gid } = await run('id', ['-g', 'postgres']);
      await fsp.chown(this.dir, Number(stdout), Number(gid));
    }
    this.port = await freePort();
    await this.tool('initdb', ['-D', this.dataDir, '-U', 'allm', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
    await this.start();
    await this.psql('CREATE DATABASE allm', 'postgres');
    return this;
  }

  async start() {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=${this.fsync ? 'on' : 'off'}`;
    await this.tool('pg_ctl', ['-D', this.dataDir, '-o', options, '-l', path.join(this.dir, 'log'), '-w', 'start']);
  }

  // mode fast: open connections are ended at once (what a database restart does to clients).
  async stop() {
    await this.tool('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', 'stop']);
  }

  async psql(sql, database = 'allm') {
    const { stdout } = await this.tool('psql', ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(this.port), '-U', 'allm', '-d', database, '-c', sql]);
    return stdout.trim();
  }

  async destroy() {
    if (!this.dir) return;
    await this.stop().catch(() => {});
    if (!process.env.ALLM_TEST_KEEP_TMP) await fsp.rm(this.dir, { recursive: true, force: true });
  }
}
