// Asks the kernel for UDP socket buffers of a given size and says whether it granted them. Shared by the
// primary (which logs the warning at start) and `quiclb doctor` (which prints it with the fix).
//
// Why it matters: QUIC runs over one UDP socket, and a burst of datagrams larger than SO_RCVBUF is
// dropped by the kernel before quiclb sees it, which QUIC then reads as congestion (RFC 9002 §7). The
// QUIC deployment guides (quic-go, Cloudflare) ask for at least 2.5 MB; Linux's default is ~208 KiB.
import type dgram from 'node:dgram';

export interface UdpBufferCheck {
  /** True when both buffers are at least `wanted` bytes (or nothing was asked for). */
  ok: boolean;
  /** Usable receive buffer in bytes, comparable to `wanted` (Linux's doubling already undone). */
  rcv: number;
  /** Usable send buffer in bytes, comparable to `wanted`. */
  snd: number;
  /** What getRecvBufferSize() reported (on Linux, twice what was granted). */
  rcvKernel: number;
  /** What getSendBufferSize() reported. */
  sndKernel: number;
  /** Set when ok is false: what was short and which sysctl caps it. */
  message?: string;
}

/**
 * Linux stores twice the requested SO_RCVBUF/SO_SNDBUF (the extra half is bookkeeping overhead, see
 * socket(7)) and getsockopt returns the doubled value; other kernels return what they granted.
 */
export const KERNEL_DOUBLES_BUFFERS = process.platform === 'linux';

function usable(reported: number): number {
  return KERNEL_DOUBLES_BUFFERS ? Math.floor(reported / 2) : reported;
}

/**
 * Requests `wanted` bytes for both buffers of a bound socket, then reads back what the kernel granted.
 * Node sets SO_RCVBUF (not SO_RCVBUFFORCE), so the cap net.core.rmem_max / wmem_max applies even to root.
 */
export function checkUdpBuffers(socket: dgram.Socket, wanted: number): UdpBufferCheck {
  let setError: string | undefined;
  if (wanted > 0) {
    try {
      socket.setRecvBufferSize(wanted);
      socket.setSendBufferSize(wanted);
    } catch (err) {
      // ERR_SOCKET_BUFFER_SIZE: the socket is not bound yet, or the kernel refused the value outright.
      setError = (err as Error).message;
    }
  }
  let rcvKernel: number;
  let sndKernel: number;
  try {
    rcvKernel = socket.getRecvBufferSize();
    sndKernel = socket.getSendBufferSize();
  } catch (err) {
    const message = `cannot read UDP buffer sizes (is the socket bound?): ${setError ?? (err as Error).message}`;
    return { ok: false, rcv: 0, snd: 0, rcvKernel: 0, sndKernel: 0, message };
  }
  const got = { rcvKernel, sndKernel, rcv: usable(rcvKernel), snd: usable(sndKernel) };
  const short: string[] = [];
  if (got.rcv < wanted) short.push(`receive ${got.rcv} bytes (capped by net.core.rmem_max)`);
  if (got.snd < wanted) short.push(`send ${got.snd} bytes (capped by net.core.wmem_max)`);
  if (!setError && short.length === 0) return { ok: true, ...got };
  const message = setError
    ? `cannot set UDP buffers to ${wanted} bytes: ${setError}`
    : `kernel granted smaller UDP buffers than the ${wanted} bytes asked for (quic.udpBufferSize): ${short.join(', ')}; ` +
      `raise net.core.rmem_max and net.core.wmem_max to at least ${wanted} (tuning/sysctl.sh --apply)`;
  return { ok: false, ...got, message };
}
