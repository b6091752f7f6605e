/** Matches a host name against a website's allowed list (`*.example.com` covers subdomains only); an empty list allows all. */
export function hostnameAllowed(hostname: string, allowed: readonly string[]): boolean {
  if (!hostname || allowed.length === 0) return true;
  const host = hostname.toLowerCase();
  return allowed.some((pattern) => {
    const p = pattern.toLowerCase();
    return p.startsWith('*.') ? host.endsWith(p.slice(1)) : host === p;
  });
}
