// The QUIC messages between the primary's UDP router (src/primary/udp-router.ts) and a shard's endpoint
// (endpoint.ts): batches of datagrams in transferred ArrayBuffers (src/wire/datagram-batch.ts). They are
// members of the primary <-> shard unions in src/shard/messages.ts.

/** Primary -> shard: datagrams for this shard's connections (or new ones). */
export interface QuicInMessage {
  type: 'quic:in';
  buf: ArrayBuffer;
  len: number;
  /** Datagrams in the batch. */
  n: number;
  /** The UDP port they arrived on. */
  lport: number;
}

/** Shard -> primary: datagrams to send, and how many of the primary's datagrams were taken. */
export interface QuicOutMessage {
  type: 'quic:out';
  buf: ArrayBuffer | null;
  len: number;
  n: number;
  /** Datagrams of quic:in batches consumed since the last quic:out (the primary's queue bound). */
  ack: number;
  /** Of those, first datagrams of new connections. */
  newAck: number;
}
