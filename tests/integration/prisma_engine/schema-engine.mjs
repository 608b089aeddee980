#!/usr/bin/env node
// Test infrastructure, not part of plano: a stand-in for Prisma's native
// `schema-engine` binary, which Prisma downloads from binaries.prisma.sh (unreachable
// from the test machines). It speaks the binary's newline-delimited JSON-RPC over
// stdio (PRISMA_SCHEMA_ENGINE_BINARY points the CLI at it) and hands every request
// to Prisma's own schema engine compiled to wasm: the build/schema_engine_bg.wasm
// of the app's prisma package (the engine of that very release), with the JS glue of
// @prisma/schema-engine-wasm and Postgres reached through @prisma/adapter-pg. The
// migration logic is Prisma's; only the transport is this file's. Not covered: the
// binary's error codes (wasm errors carry none; P1003 is inferred so that
// `create-database` still runs), preview features, shadow databases.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, 'package.json'));
let quiet = false;
const log = (...a) => quiet || process.stderr.write(JSON.stringify({ level: 'INFO', target: 'shim', fields: { message: a.join(' ') } }) + '\n');

// ---- argv (same flags the CLI passes to the binary) ----
const argv = process.argv.slice(2);
const datamodelPaths = [];
let datasource = {};
let cliCmd = null;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--version' || a === '-V') {
    const bg = await loadWasm();
    process.stdout.write(`schema-engine-cli ${bg.version()}\n`);
    process.exit(0);
  } else if (a === '--datamodels') datamodelPaths.push(argv[++i]);
  else if (a === '--datasource') datasource = JSON.parse(argv[++i]);
  else if (a === '--enabled-preview-features' || a === '--extension-types') i++; // not supported by the wasm constructor
  else if (a === 'cli') cliCmd = argv[++i];
}

// `schema-engine --datasource <json> cli <can-connect-to-database|create-database>`
// Contract (see h2e/cx/yz in prisma/build/cli.js): exit 0 = ok; otherwise stderr
// lines 2.. are JSON logs, one {level:"ERROR",target:"schema_engine::logger",fields:{error_code,message}}.
async function cliMode(cmd) {
  const fail = (error_code, message) => {
    process.stderr.write(JSON.stringify({ level: 'INFO', target: 'shim', fields: { message: 'cli ' + cmd } }) + '\n' + JSON.stringify({ level: 'ERROR', target: 'schema_engine::logger', fields: { error_code, message } }) + '\n');
    process.exit(1);
  };
  const url = datasource.url;
  if (cmd === 'can-connect-to-database') {
    try {
      const engine = await getEngine();
      await engine.ensureConnectionValidity({ datasource: { tag: 'ConnectionString', url } });
      process.exit(0);
    } catch (e) {
      const d = parseErr(e);
      // wasm errors carry no Prisma error code; the CLI only needs P1003 (db missing -> create-database)
      const code = d.error_code ?? (/does not exist/i.test(d.message) ? 'P1003'
        : /password|authentication/i.test(d.message) ? 'P1000' : 'P1001');
      fail(code, d.message);
    }
  } else if (cmd === 'create-database') {
    // Not in the wasm API: done with node-postgres directly (CREATE DATABASE via the maintenance db).
    const pg = require('pg');
    const u = new URL(url);
    const db = decodeURIComponent(u.pathname.slice(1));
    u.pathname = '/postgres';
    const c = new pg.Client({ connectionString: u.toString() });
    try { await c.connect(); await c.query(`CREATE DATABASE "${db.replace(/"/g, '""')}"`); await c.end(); process.exit(0); }
    catch (e) { fail('P1000', e.message); }
  } else fail('P1000', `shim: unsupported cli command ${cmd}`);
}

function parseErr(e) {
  let data = { is_panic: false, message: e?.message ?? String(e), meta: null, error_code: null };
  try {
    const parsed = JSON.parse(e.message);
    if (parsed && typeof parsed === 'object') data = { is_panic: false, meta: null, error_code: null, ...parsed };
  } catch {}
  return data;
}

async function loadWasm() {
  const bgPath = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
  const bg = await import(bgPath);
  // The app's prisma (resolved from where the CLI runs), else one next to this file.
  const fromApp = createRequire(path.join(process.cwd(), 'package.json'));
  let prismaPackage;
  try { prismaPackage = fromApp.resolve('prisma/package.json'); } catch { prismaPackage = require.resolve('prisma/package.json'); }
  const wasmFile = process.env.SHIM_SCHEMA_ENGINE_WASM ?? path.join(path.dirname(prismaPackage), 'build', 'schema_engine_bg.wasm');
  const { instance } = await WebAssembly.instantiate(fs.readFileSync(wasmFile), { './schema_engine_bg.js': bg });
  bg.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start();
  return bg;
}

// ---- engine (created lazily, the binary also connects lazily) ----
let enginePromise;
function getEngine() {
  return (enginePromise ??= (async () => {
    const bg = await loadWasm();
    const { PrismaPg } = require('@prisma/adapter-pg');
    const { bindMigrationAwareSqlAdapterFactory } = require('@prisma/driver-adapter-utils');
    const url = datasource.url ?? process.env.DATABASE_URL;
    if (!url) throw new Error('shim: no datasource url (pass --datasource or DATABASE_URL)');
    const factory = bindMigrationAwareSqlAdapterFactory(new PrismaPg({ connectionString: url }));
    const datamodels = datamodelPaths.length
      ? datamodelPaths.map((p) => [p, fs.readFileSync(p, 'utf8')])
      : undefined;
    log('wasm schema engine', bg.version(), 'datamodels:', datamodelPaths.join(','));
    return bg.SchemaEngine.new({ datamodels }, (msg) => log(String(msg)), factory);
  })());
}

// JSON-RPC method name -> wasm method name
const rename = { getDatabaseVersion: 'version' };

let nextOutId = 1_000_000;
const send = (obj) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', ...obj }) + '\n');

async function handle(req) {
  const method = rename[req.method] ?? req.method;
  try {
    const engine = await getEngine();
    if (typeof engine[method] !== 'function') throw Object.assign(new Error(`Unknown method ${req.method}`), { rpcCode: -32601 });
    let result = await engine[method](req.params ?? {});
    if (req.method === 'diff' && result && typeof result.stdout === 'string') {
      // The binary prints the diff through a `print` request to the CLI.
      send({ id: nextOutId++, method: 'print', params: { content: result.stdout } });
      result = { exitCode: result.exitCode };
    }
    send({ id: req.id, result: result === undefined ? null : result });
  } catch (e) {
    // Mirror the binary's error shape: data.{is_panic,message,error_code,meta}
    const data = parseErr(e);
    if (e?.rpcCode) send({ id: req.id, error: { code: e.rpcCode, message: data.message } });
    else send({ id: req.id, error: { code: 4466, message: 'An error happened. Check the data field for details.', data } });
  }
}

if (cliCmd) { quiet = true; await cliMode(cliCmd); } // never returns

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
const pending = [];
rl.on('line', (line) => {
  if (!line.trim()) return;
  const msg = JSON.parse(line);
  if (msg.method === undefined) return; // response to our `print` request
  // the binary processes requests sequentially
  pending.push(msg);
  if (pending.length === 1) pump();
});
async function pump() {
  while (pending.length) { await handle(pending[0]); pending.shift(); }
}
rl.on('close', async () => {
  while (pending.length) await new Promise((r) => setTimeout(r, 10));
  process.exit(0);
});
