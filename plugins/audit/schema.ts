import { z } from 'zod';

export const AuditOptions = z
  .object({
    /** Request headers never copied into a record, even if an operation's x-weir-audit.capture names them. */
    neverCapture: z
      .array(z.string())
      .default(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key'])
      .transform((names) => new Set(names.map((n) => n.toLowerCase()))),
  })
  .prefault({});

export type AuditOptions = z.infer<typeof AuditOptions>;
