import { z } from 'zod';

export const RequestIdOptions = z
  .object({
    /** The header read from the client and echoed back. */
    header: z.string().default('X-Request-Id'),
    /** An inbound id is kept only if it matches this; otherwise a new one is made. */
    accept: z.instanceof(RegExp).default(/^[A-Za-z0-9._:-]{8,128}$/),
  })
  .prefault({});

export type RequestIdOptions = z.infer<typeof RequestIdOptions>;
