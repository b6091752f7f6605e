import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { Reader, type Response } from 'mmdb-lib';

export type CountryLookup = (ip: string) => string;

const UNKNOWN_COUNTRY = 'ZZ';

/**
 * Country of an IP address from an offline MaxMind-format database: by default the one shipped in
 * @ip-location-db/geo-whois-asn-country-mmdb (country only, ~8 MB, data CC BY 4.0 by the NRO),
 * or a newer file named by ANALYTICS_GEOIP_DB. Loaded once; `ZZ` when unknown.
 */
export function openCountryLookup(path?: string): CountryLookup {
  const file = path ?? createRequire(import.meta.url).resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb');
  // ip-location-db files hold `{country_code}`; MaxMind's own hold `{country: {iso_code}}`.
  const reader = new Reader<Response>(readFileSync(file));
  return (ip) => {
    const address = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
    if (!isIP(address)) return UNKNOWN_COUNTRY;
    const record = reader.get(address) as { country_code?: string; country?: { iso_code?: string } } | null;
    const code = record?.country_code ?? record?.country?.iso_code;
    return code && /^[A-Z]{2}$/.test(code) ? code : UNKNOWN_COUNTRY;
  };
}
