// Small, fast, stable, non-cryptographic string hashes. Stable means the same value in every thread and
// across restarts (no per-process seed), which ip_hash and the shared session table rely on.

const FNV32_OFFSET = 0x811c9dc5;
const FNV32_PRIME = 0x01000193;

/** FNV-1a over UTF-16 code units, finished with murmur3's fmix32 so nearby inputs spread over the ring. */
export function hash32(s: string): number {
  let h = FNV32_OFFSET;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV32_PRIME);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * 64-bit FNV-1a over UTF-16 code units, computed in two 32-bit halves (no BigInt on the hot path).
 * Returns [hi, lo] as unsigned 32-bit numbers. The 64-bit prime is 2^40 + 0x1b3, so
 * x * prime = x * 0x1b3 + (lo << 40).
 */
export function hash64(s: string): [number, number] {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < s.length; i++) {
    lo = (lo ^ s.charCodeAt(i)) >>> 0;
    const loMul = lo * 0x1b3; // < 2^41: exact in a double
    const carry = Math.floor(loMul / 0x100000000);
    hi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) >>> 0;
    lo = loMul >>> 0;
  }
  return [hi, lo];
}
