import { randomBytes, randomUUID } from 'node:crypto';

const BASE36_UPPER = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function randomString(alphabet: string, length: number): string {
  // Rejection sampling keeps every character equally likely.
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < limit && out.length < length) out += alphabet[byte % alphabet.length];
    }
  }
  return out;
}

export const newWebsiteId = (): string => randomUUID();

/** Weir-style tracking id (TrackingId schema): `WA-` and 10 upper-case letters or digits, about 51 bits. */
export const newTrackingId = (): string => `WA-${randomString(BASE36_UPPER, 10)}`;

export const newGoalId = (): string => `goal_${randomString(BASE62, 16)}`;

export const newQueryId = (): string => `q_${randomString(BASE62, 16)}`;

export const newSessionId = (): string => randomUUID();
