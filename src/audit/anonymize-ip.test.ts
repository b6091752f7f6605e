import { describe, expect, it } from 'vitest';
import { anonymizeIp } from './anonymize-ip.js';

describe('anonymizeIp', () => {
  it('keeps the /24 of IPv4 (also when mapped into IPv6) and the /48 of IPv6', () => {
    expect(anonymizeIp('203.0.113.24')).toBe('203.0.113.0');
    expect(anonymizeIp('::ffff:198.51.100.7')).toBe('198.51.100.0');
    expect(anonymizeIp('2001:0db8:85a3:0000:0000:8a2e:0370:7334')).toBe('2001:db8:85a3::');
    expect(anonymizeIp('2001:db8::1')).toBe('2001:db8:0::');
    expect(anonymizeIp('::1')).toBe('0:0:0::');
  });

  it('never passes through something that is not an address', () => {
    expect(anonymizeIp('not-an-ip')).toBe('unknown');
    expect(anonymizeIp('')).toBe('unknown');
  });
});
