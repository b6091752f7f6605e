import { z } from 'zod';

export const BodyOptions = z
  .object({
    /** Default limit in bytes when an operation's x-weir-body names none (config BODY_LIMIT). */
    limit: z.number().int().positive().optional(),
  })
  .prefault({});

export type BodyOptions = z.infer<typeof BodyOptions>;
