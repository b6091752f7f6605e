import { z } from 'zod';

export const DeprecationOptions = z
  .object({
    /** Where the migration guide lives, sent as `Link: <...>; rel="deprecation"` when set. */
    link: z.string().url().optional(),
  })
  .prefault({});

export type DeprecationOptions = z.infer<typeof DeprecationOptions>;
