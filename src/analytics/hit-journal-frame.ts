import { crc32 } from 'node:zlib';

/**
 * The hit journal's on-disk format: a segment file is a run of frames, one per journal write
 * (a group commit of several requests). A frame is an 8-byte header, the payload's length and
 * CRC-32 (both little-endian UInt32), then the payload: JSONEachRow lines of ingest rows, each
 * ending in a newline, ready to be sent to ClickHouse as they are.
 *
 * A write is acknowledged only after it is on disk (fdatasync), and a frame is only ever appended
 * after the previous one, so after a crash every frame is whole except possibly the last: a torn
 * or partly written frame (short, or its CRC doesn't match) was never acknowledged and is dropped
 * with whatever follows it.
 */
export const FRAME_HEADER_BYTES = 8;

/** The header of a frame holding `parts` (concatenated). */
export function frameHeader(parts: readonly Buffer[]): Buffer {
  let crc = 0;
  let length = 0;
  for (const p of parts) {
    crc = crc32(p, crc);
    length += p.length;
  }
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32LE(length, 0);
  header.writeUInt32LE(crc, 4);
  return header;
}

export interface SegmentContents {
  /** Each whole frame's payload (views into the file's bytes). */
  payloads: Buffer[];
  /** Rows (lines) in those payloads. */
  rows: number;
  /** Bytes of whole frames from the start. */
  validBytes: number;
  /** Bytes after the last whole frame: a torn tail (never acknowledged), 0 normally. */
  tornBytes: number;
}

/** The whole frames of a segment file's bytes, stopping at the first torn or corrupt one. */
export function readFrames(data: Buffer): SegmentContents {
  const payloads: Buffer[] = [];
  let rows = 0;
  let offset = 0;
  while (offset + FRAME_HEADER_BYTES <= data.length) {
    const length = data.readUInt32LE(offset);
    const end = offset + FRAME_HEADER_BYTES + length;
    if (length === 0 || end > data.length) break;
    const payload = data.subarray(offset + FRAME_HEADER_BYTES, end);
    if (crc32(payload) !== data.readUInt32LE(offset + 4) || payload[payload.length - 1] !== 0x0a) break;
    payloads.push(payload);
    rows += countLines(payload);
    offset = end;
  }
  return { payloads, rows, validBytes: offset, tornBytes: data.length - offset };
}

function countLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) n++;
  return n;
}
