// First step of `npm test`: fail early, with a clear message, on a Node older than the one package.json pins.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 24 || (major === 24 && minor < 21)) {
  console.error(`quiclb needs Node.js >= 24.21, this is ${process.version}: run \`npm install\` and use npm scripts.`);
  process.exit(1);
}
console.log(`node ${process.version} ok`);
