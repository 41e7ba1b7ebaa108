#!/usr/bin/env node
// The `quiclb` command. npm scripts and `npx quiclb` run it on the Node 24 that package.json pins
// (node_modules/.bin/node), which strips the TypeScript types of src/ at load time.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 24 || (major === 24 && minor < 21)) {
  process.stderr.write(
    `quiclb needs Node.js >= 24.21 (this is ${process.version}). Run \`npm install\` and then \`npx quiclb ...\` or \`npm start\`, which use the Node pinned in package.json.\n`,
  );
  process.exit(1);
}
// Caches compiled (and type-stripped) modules on disk: the primary and every shard load the same files.
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`quiclb: ${err?.stack ?? err}\n`);
  process.exit(1);
});
