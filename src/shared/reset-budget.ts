// The per-client-address budget for stream resets (HTTP/2 RST_STREAM, HTTP/3 RESET_STREAM / STOP_SENDING of a
// request whose response had not finished; CVE-2023-44487 "Rapid Reset"). The HTTP/2 and HTTP/3 frontends
// call it for every such reset; the shard backs it with the table all shards share (src/ratelimit), so a
// client cannot escape its budget by reconnecting or by landing on another shard.
export interface ClientResetLimiter {
  /** Counts `n` (default 1) client resets from `address` at `now` (ms); false once that address is over its budget. */
  recordReset(address: string, now: number, n?: number): boolean;
}
