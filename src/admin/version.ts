// quiclb's version as published in package.json, for /stats and /metrics.
import pkg from '../../package.json' with { type: 'json' };

export const QUICLB_VERSION: string = pkg.version;
